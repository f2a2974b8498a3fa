"""Native libraries that write to the process's file descriptors behind Python's back."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def native_stderr_silenced() -> Iterator[None]:
    """Point file descriptor 2 at /dev/null for the block. C++ and FFmpeg code (LiteRT's
    "Created TensorFlow Lite XNNPACK delegate", OpenCV's encoder probes) print there with no
    switch in their Python APIs, and the CLI promises one-line errors on stderr and nothing
    else. Where descriptor 2 cannot be duplicated, the block runs unsilenced."""
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
