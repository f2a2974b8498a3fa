"""Native libraries that write to the process's file descriptors behind Python's back."""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO


@contextmanager
def native_stderr_silenced(only: re.Pattern[bytes] | None = None) -> Iterator[None]:
    """Point file descriptor 2 away for the block. C++ and FFmpeg code (LiteRT's "Created
    TensorFlow Lite XNNPACK delegate", OpenCV's encoder probes and codec-tag notices) print there
    with no switch in their Python APIs, and the CLI promises one-line errors on stderr and
    nothing else. Without ``only`` everything written in the block is dropped. With it, only the
    lines it matches are: the rest (a real error, another thread's log line) reach stderr when
    the block ends. Where descriptor 2 cannot be redirected, the block runs unsilenced."""
    sys.stderr.flush()
    with contextlib.ExitStack() as stack:
        try:
            sink: IO[bytes]
            if only is None:
                sink = stack.enter_context(open(os.devnull, "wb"))
            else:
                sink = stack.enter_context(tempfile.TemporaryFile(prefix="edge-"))
            saved = os.dup(2)
        except OSError:
            yield
            return
        try:
            os.dup2(sink.fileno(), 2)
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            if only is not None:
                sink.seek(0)
                kept = [line for line in sink.read().splitlines(True) if not only.search(line)]
                if kept:
                    os.write(2, b"".join(kept))
