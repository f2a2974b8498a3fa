"""Benchmarks: accuracy on real data and speed on this machine (``edge bench ...``)."""
