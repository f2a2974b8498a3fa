"""The recognition stages, one module each, in data-flow order.

capture -> detect -> align -> quality -> embed (composed for one image by :mod:`analyzer`)
-> track -> decide, driven frame by frame by :mod:`frames`; :mod:`annotate` draws review videos
and :mod:`metrics` times the stages. The pipeline reaches the watchlist only through the
:class:`~edge.pipeline.decide.Gallery` Protocol.
"""
