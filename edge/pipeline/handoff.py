"""The hand-over from capture to inference: a frame as read, and the bounded queue between them."""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from datetime import datetime

from edge.types import Image


@dataclass(frozen=True, eq=False)
class Frame:
    """One frame as read from a source."""

    index: int  # 0-based count of frames read from the source (a file's own frame number)
    image: Image
    t: float  # seconds on the source clock: media time for files, since start for live sources
    wall: datetime  # UTC wall-clock time at which it was read
    read_at: float  # time.monotonic() at which it was read (for latency)


class FrameQueue:
    """Bounded hand-over from capture to inference.

    ``lossy`` (live sources): :meth:`put` never waits; a full queue drops its oldest frame and
    counts it in :attr:`dropped`. Otherwise :meth:`put` waits for room, so every frame is
    processed (files read as fast as inference goes)."""

    def __init__(self, maxsize: int, *, lossy: bool) -> None:
        self.maxsize = max(1, maxsize)
        self.lossy = lossy
        self.dropped = 0
        self.discarded = 0  # frames still queued when the run was stopped
        self._items: deque[Frame] = deque()
        self._cond = threading.Condition()
        self._closed = False

    def put(self, frame: Frame) -> bool:
        """Queue a frame; False if the queue was closed (the frame is not taken)."""
        with self._cond:
            if self.lossy:
                while len(self._items) >= self.maxsize:
                    self._items.popleft()
                    self.dropped += 1
            else:
                while len(self._items) >= self.maxsize and not self._closed:
                    self._cond.wait()
            if self._closed:
                return False
            self._items.append(frame)
            self._cond.notify_all()
            return True

    def get(self, timeout: float | None = None) -> Frame | None:
        """The oldest frame; None once the queue is closed and empty (or after ``timeout``)."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._items or self._closed, timeout):
                return None
            if not self._items:
                return None
            frame = self._items.popleft()
            self._cond.notify_all()
            return frame

    def close(self, *, discard: bool = False) -> None:
        """No more frames. ``discard`` also throws away the frames still waiting."""
        with self._cond:
            self._closed = True
            if discard:
                self.discarded += len(self._items)
                self._items.clear()
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed

    def __len__(self) -> int:
        return len(self._items)
