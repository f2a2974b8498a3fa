"""Inference runtimes behind one small interface; see :mod:`edge.backends.base`."""

from edge.backends.base import BACKENDS, InferenceSession, Placement, open_session

__all__ = ["BACKENDS", "InferenceSession", "Placement", "open_session"]
