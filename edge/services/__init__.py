"""The long-running processes, wired from the features: wiring only.

- :mod:`edge.services.recognizer`: ``edge run``: capture, inference and alert threads.
- :mod:`edge.services.agent`: ``edge sync``: watchlist sync, the local API, the watchdog.

This is where a feature's Protocol meets the real object of another feature (the recognizer
hands the installed :class:`~edge.watchlist.matcher.Watchlist` to the pipeline as its
:class:`~edge.pipeline.decide.Gallery`).
"""
