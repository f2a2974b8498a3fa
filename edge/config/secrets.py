"""Secrets: never in the YAML file, read from systemd credentials or the environment."""

from __future__ import annotations

import os
from pathlib import Path

from edge.errors import ConfigError
from edge.system.inputs import read_bounded

# Passwords and tokens are short; 64 KiB is room for a PEM bundle and still nothing to read.
MAX_SECRET_BYTES = 64 * 1024


def read_secret(name: str) -> str | None:
    """A secret from systemd credentials (``$CREDENTIALS_DIRECTORY/<name>``) or the environment.

    ``name`` is the credential file name, e.g. ``mqtt_password``; the environment variable is
    ``EDGE_<NAME>`` in upper case. Credentials win, since they are the hardened path. A
    credential that is not a regular file, is over :data:`MAX_SECRET_BYTES` or is not UTF-8
    is a :class:`ConfigError` (its contents are never quoted).
    """
    cred_dir = os.environ.get("CREDENTIALS_DIRECTORY")
    if cred_dir:
        cred = Path(cred_dir) / name
        if cred.exists():
            raw = read_bounded(cred, MAX_SECRET_BYTES, "credential", ConfigError)
            try:
                return raw.decode("utf-8").rstrip("\n")
            except UnicodeDecodeError as exc:
                raise ConfigError(f"credential {cred} is not UTF-8 text") from exc
    return os.environ.get(f"EDGE_{name.upper()}")
