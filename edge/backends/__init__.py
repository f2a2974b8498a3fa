"""Inference runtimes behind one small interface; see :mod:`edge.backends.base`."""

from edge.backends.base import BACKENDS, InferenceSession, open_session

__all__ = ["BACKENDS", "InferenceSession", "open_session"]
