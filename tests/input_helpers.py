"""Inputs that are not regular files, or are too large: for the tests of bounded reads.

A FIFO made here never hangs a test, even against code that would block on it: a thread opens
its write end as soon as a reader waits on it and closes it at once, so the reader sees an empty
file (and fails the test's check) instead of blocking for ever.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from pathlib import Path


def fifo(path: Path, unblock_within_s: float = 30.0) -> Path:
    os.mkfifo(path)

    def unblock() -> None:
        deadline = time.monotonic() + unblock_within_s
        while time.monotonic() < deadline:
            try:
                fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:  # ENXIO: nobody is reading (yet); ENOENT: removed
                time.sleep(0.05)
                continue
            os.close(fd)
            return

    threading.Thread(target=unblock, daemon=True).start()
    return path


def dev_zero(path: Path) -> Path:
    """A symlink to /dev/zero: endless zeros, which an unbounded read never finishes."""
    path.symlink_to("/dev/zero")
    return path


def sparse(path: Path, size: int) -> Path:
    """A file of ``size`` bytes that takes no room on disk."""
    with path.open("wb") as fh:
        fh.truncate(size)
    return path


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    path.write_bytes(data)
    return path
