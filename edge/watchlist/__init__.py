"""The watchlist: signed compact bundles, the template index and calibrated matching.

- :mod:`edge.watchlist.entries`: the list's contents: entries table and templates.
- :mod:`edge.watchlist.bundle`: the bundle format; reading and verifying a bundle.
- :mod:`edge.watchlist.writer`: building and signing full bundles and deltas (the hub).
- :mod:`edge.watchlist.details`: the signed dispatch-only sidecar (reason, legal basis, case
  reference) that never goes to a device.
- :mod:`edge.watchlist.index`: the usearch template index (cosine, int8 or float16).
- :mod:`edge.watchlist.policy`: threshold from a target FPIR via the model's impostor
  calibration; expiry.
- :mod:`edge.watchlist.keys`: Ed25519 keys and signatures.
- :mod:`edge.watchlist.install`: the device's state directory and the atomic swap.
- :mod:`edge.watchlist.matcher`: the loaded list that faces are matched against.
- :mod:`edge.watchlist.enroll`: photos -> templates, with a per-photo report.
- :mod:`edge.watchlist.calibrate`: the impostor calibration behind the threshold policy.
"""
