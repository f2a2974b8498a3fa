"""The device's local HTTP API (:func:`edge.api.app.create_app`).

This package imports nothing at load time: :mod:`edge.config` imports its config section.
"""
