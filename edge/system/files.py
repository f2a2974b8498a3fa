"""Writing a file whole: readers see the old file or the new one, never a half-written one."""

from __future__ import annotations

import os
from pathlib import Path


def write_atomically(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data``: staged beside it (same file system, so the rename is
    atomic) and renamed into place. Raises ``OSError``; a failed write leaves ``path`` as it was.
    """
    staged = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        staged.write_bytes(data)
        os.replace(staged, path)
    except OSError:
        staged.unlink(missing_ok=True)
        raise
