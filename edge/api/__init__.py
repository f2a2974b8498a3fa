"""The device's local HTTP API (:func:`edge.api.app.create_app`).

It reads what it reports through the :class:`~edge.api.app.RuntimeProvider` Protocol; the
device agent (:mod:`edge.services.agent`) provides it.
"""
