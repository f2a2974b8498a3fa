"""The watchlist: signed compact bundles, the template index and calibrated matching.

- :mod:`edge.watchlist.bundle`: the bundle format (manifest, index, entries, signature), full
  bundles and deltas, and every check a bundle must pass.
- :mod:`edge.watchlist.index`: the usearch template index (cosine, int8 or float16).
- :mod:`edge.watchlist.policy`: threshold from a target FPIR via the model's impostor
  calibration; expiry.
- :mod:`edge.watchlist.install`: the device's state directory and the atomic swap.
- :mod:`edge.watchlist.matcher`: the loaded list that faces are matched against.
- :mod:`edge.watchlist.enroll`: photos -> templates, with a per-photo report.

This package imports nothing at load time: :mod:`edge.config` imports its config section.
"""
