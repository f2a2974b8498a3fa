"""The long-running processes and the tools around them, wired from the features: wiring only.

- ``edge run``: :mod:`edge.services.run_setup` chooses the source and the list (the demo, a
  bundle, or the installed list); :mod:`edge.services.recognizer` runs capture, inference and
  alert threads, with :mod:`~edge.services.supervision` (the main thread: start, watch, reload,
  ordered stop), :mod:`~edge.services.reporting` (status line, ALERT lines, metrics, summary) and
  :mod:`~edge.services.feedback` (review decisions back into the pipeline).
- :mod:`edge.services.agent`: ``edge sync``: watchlist sync, the local API, the watchdog.
- :mod:`edge.services.dispatch`: ``edge dispatch serve``.
- :mod:`edge.services.doctor`: the machine checks of ``edge doctor``.

This is where a feature's Protocol meets the real object of another feature (the recognizer
hands the installed :class:`~edge.watchlist.matcher.Watchlist` to the pipeline as its
:class:`~edge.pipeline.decide.Gallery`).
"""
