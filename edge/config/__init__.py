"""Typed configuration: the root (:mod:`edge.config.root`) and one module per section.

A foundation: it imports no feature package, so every feature can read its own section (and
no feature needs another's). Secrets are in :mod:`edge.config.secrets`, never in the file.
"""

from edge.config.root import Config, StatePaths, config_from_dict, load_config

__all__ = ["Config", "StatePaths", "config_from_dict", "load_config"]
