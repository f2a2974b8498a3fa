"""Secrets: never in the YAML file, read from systemd credentials or the environment."""

from __future__ import annotations

import os
from pathlib import Path


def read_secret(name: str) -> str | None:
    """A secret from systemd credentials (``$CREDENTIALS_DIRECTORY/<name>``) or the environment.

    ``name`` is the credential file name, e.g. ``mqtt_password``; the environment variable is
    ``EDGE_<NAME>`` in upper case. Credentials win, since they are the hardened path.
    """
    cred_dir = os.environ.get("CREDENTIALS_DIRECTORY")
    if cred_dir:
        cred = Path(cred_dir) / name
        if cred.is_file():
            return cred.read_text(encoding="utf-8").rstrip("\n")
    return os.environ.get(f"EDGE_{name.upper()}")
