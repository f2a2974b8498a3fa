"""edge: a face-recognition appliance for small CPUs."""

__version__ = "0.1.0"
