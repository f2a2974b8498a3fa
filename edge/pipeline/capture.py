"""Video frames into a queue: a source read on its own thread, reconnected when it fails.

:class:`Capture` reads a source (:func:`edge.pipeline.source.parse_source`: a file, a folder of
stills, a camera, a stream) on its own thread into a :class:`FrameQueue`, reconnecting with
backoff when a live source fails and counting its outages. Files, folders and cameras are read
by :mod:`edge.pipeline.readers` (OpenCV), network streams by :mod:`edge.pipeline.stream` (PyAV).
A live source never waits for inference: when the queue is full its oldest frame is dropped and
counted. Stills: :mod:`edge.pipeline.images`.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from edge.config.capture import CaptureConfig
from edge.errors import CaptureError, StreamError
from edge.pipeline.handoff import Frame, FrameQueue
from edge.pipeline.metrics import StageStats
from edge.pipeline.readers import FolderReader, VideoReader
from edge.pipeline.source import SourceSpec
from edge.pipeline.stream import PROBED_CAUSES, REFUSING_CAUSES, StreamReader, host_port, reachable
from edge.types import Image

log = logging.getLogger(__name__)

# The stills of a folder are unrelated photos: the source clock steps this far from one to the
# next, so that no track (and no cooldown) ever spans two of them.
STILL_STEP_S = 3600.0


CaptureState = Literal["starting", "running", "reconnecting", "ended", "lost", "stopped", "failed"]
Reader = VideoReader | FolderReader | StreamReader
_MAX_DOUBLINGS = 30  # the backoff reaches any reconnect_max_s long before; bounds 2**n


@dataclass
class _Pacer:
    """Which frames pass the ``max_fps`` cap and, for a file read in real time, when each is
    due: media time after the first frame, on the monotonic clock."""

    min_gap: float  # seconds between frames passed on (0: no cap)
    realtime: bool
    last_emitted: float | None = None
    origin: tuple[float, float] | None = None  # (monotonic, media time) of the first frame

    def skips(self, t: float) -> bool:
        """Whether the frame at source time ``t`` comes too soon after the last one passed."""
        if (
            self.min_gap
            and self.last_emitted is not None
            and t - self.last_emitted < self.min_gap * 0.999
        ):
            return True
        self.last_emitted = t
        return False

    def due(self, now: float, t: float) -> float | None:
        """When (monotonic) the frame at ``t`` is due; None when frames are not paced."""
        if not self.realtime:
            return None
        if self.origin is None:
            self.origin = (now, t)
        return self.origin[0] + (t - self.origin[1])


@dataclass(frozen=True)
class Outages:
    """Times a live source that was delivering frames delivered none: from its last frame before
    the failure to its first frame after (an outage still going on counts up to now)."""

    count: int
    total_s: float
    longest_s: float
    ongoing: bool


class Capture:
    """Reads a source on its own thread into a :class:`FrameQueue`.

    A file or folder ends at its end. A camera or stream that fails (read error, end of stream,
    no frame within ``read_timeout_s``) is closed and reopened after ``reconnect_min_s``,
    doubling up to ``reconnect_max_s``; while a stream's host cannot be reached, a TCP connect
    every ``reconnect_min_s`` cuts that wait short as soon as it answers. After
    ``max_reconnects`` attempts in a row without a frame (if set, and not 0) the capture gives up
    with state ``lost``. Frames beyond ``max_fps`` are skipped at the source. The queue is closed
    when the capture ends, whatever the reason.
    """

    def __init__(
        self,
        spec: SourceSpec,
        config: CaptureConfig,
        queue: FrameQueue,
        *,
        max_frames: int | None = None,
        stats: StageStats | None = None,
    ) -> None:
        self.spec = spec
        self.config = config
        self.queue = queue
        self.max_frames = max_frames
        self.stats = stats or StageStats("capture")
        self.state: CaptureState = "starting"
        self.error: BaseException | None = None
        self.frames_read = 0
        self.frames_skipped = 0  # over the frame-rate cap
        self.frames_corrupt = 0  # could not be decoded (files, folders); known at their end
        self.reconnects = 0  # reconnect attempts made
        self.last_error: str | None = None
        self._failure: CaptureError | None = None  # why the source is down, until a frame comes
        self._failures = 0  # failed attempts in a row (opening, or reading after a reopen)
        self._retry_in: float | None = None  # the wait already announced for a lost source
        self._reader: Reader | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._started = time.monotonic()
        self._outage_lock = threading.Lock()
        self._last_frame_at: float | None = None
        self._outage_since: float | None = None  # the last frame before the ongoing outage
        self._outage_count = 0
        self._outage_total_s = 0.0
        self._outage_longest_s = 0.0
        self._ended_at: float | None = None

    @property
    def fps(self) -> float | None:
        """The source's nominal frame rate, if it states a sane one."""
        return self._reader.fps if self._reader is not None else None

    @property
    def frame_size(self) -> tuple[int, int] | None:
        """Width and height of a video source's frames, if it says (stills vary)."""
        reader = self._reader
        return None if reader is None or isinstance(reader, FolderReader) else reader.frame_size

    def outages(self) -> Outages:
        """The outages so far (safe to call from any thread)."""
        with self._outage_lock:
            total, longest = self._outage_total_s, self._outage_longest_s
            ongoing = self._outage_since is not None
            if self._outage_since is not None:
                current = (self._ended_at or time.monotonic()) - self._outage_since
                total, longest = total + current, max(longest, current)
            return Outages(self._outage_count, total, longest, ongoing)

    def _make_reader(self) -> Reader:
        if self.spec.kind == "folder":
            return FolderReader(self.spec)
        if self.spec.kind == "stream":
            return StreamReader(self.spec, self.config)
        return VideoReader(self.spec)

    def open(self) -> None:
        """Open the source now, on the calling thread, so that a file or folder that cannot be
        read is an error before anything starts, and so is a stream whose server answers "not
        found" or "unauthorized" (unless ``max_reconnects`` is set). A live source that cannot be
        opened yet is retried by the capture thread."""
        reader = self._make_reader()
        try:
            reader.open()
        except CaptureError as exc:
            if not self.spec.live:
                raise
            if (
                isinstance(exc, StreamError)
                and exc.cause in REFUSING_CAUSES
                and self.config.max_reconnects is None
            ):
                raise StreamError(
                    exc.cause,
                    f"{exc}; not retrying (capture.max_reconnects or --max-reconnects N keeps "
                    "trying)",
                ) from exc
            self._failure = exc
            self.last_error = str(exc)
            return
        self._reader = reader

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="capture", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Ask the thread to stop; it ends after the read in progress."""
        self._stop.set()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the thread; False if it is still running (stuck in a read) after timeout."""
        if self._thread is not None:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True

    def close(self) -> None:
        """Release a source opened by :meth:`open` whose thread never started."""
        if self._thread is None and self._reader is not None:
            self._reader.close()
            self._reader = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        try:
            self._loop()
        except Exception as exc:
            self.state = "failed"
            self.error = exc
            log.exception("capture from %s failed", self.spec.name)
        finally:
            if self._reader is not None:
                self._reader.close()
                self._reader = None
            with self._outage_lock:
                self._ended_at = time.monotonic()
            self.queue.close()

    def _try_open(self) -> Reader | None:
        """A freshly opened reader, or None (``_failure`` says why)."""
        reader = self._make_reader()
        try:
            reader.open()
        except CaptureError as exc:
            self._failure = exc
            self.last_error = str(exc)
            return None
        return reader

    def _announce_retry(self, failures: int, why: CaptureError) -> float | None:
        """Log ``why`` and the wait before reconnect attempt ``failures``, and return that
        wait; None (state ``lost``) if it is time to give up."""
        config = self.config
        limit = config.max_reconnects
        if limit and failures > limit:
            self.state = "lost"
            log.error(
                "%s; giving up after %d reconnect attempts (capture.max_reconnects)", why, limit
            )
            return None
        doublings = min(failures - 1, _MAX_DOUBLINGS)
        delay = min(config.reconnect_max_s, config.reconnect_min_s * 2.0**doublings)
        self.state = "reconnecting"
        self.reconnects += 1
        attempt = f"attempt {failures}" + (f" of {limit}" if limit else "")
        if self._probes(why, delay):
            host, port = host_port(self.spec.target)
            log.warning(
                "%s; reconnecting in %.1fs at most, sooner once %s:%d accepts connections (%s)",
                why,
                delay,
                host,
                port,
                attempt,
            )
        else:
            log.warning("%s; reconnecting in %.1fs (%s)", why, delay, attempt)
        return delay

    def _probes(self, why: CaptureError, delay: float) -> bool:
        """Whether the wait before the next attempt is cut short by probing the host."""
        return (
            isinstance(why, StreamError)
            and why.cause in PROBED_CAUSES
            and delay > self.config.reconnect_min_s
        )

    def _wait(self, delay: float, why: CaptureError) -> None:
        """Wait ``delay`` before the next attempt; while a stream's host is unreachable, try a
        TCP connect every ``reconnect_min_s`` and stop waiting once one succeeds."""
        if not self._probes(why, delay):
            self._stop.wait(delay)
            return
        step = self.config.reconnect_min_s
        deadline = time.monotonic() + delay
        while not self._stop.wait(min(step, max(deadline - time.monotonic(), 0.0))):
            if time.monotonic() >= deadline or reachable(self.spec.target, step):
                return

    def _lost(self, why: CaptureError) -> None:
        """A source that was open failed: an outage starts (if frames had been flowing)."""
        self._failure = why
        self.last_error = str(why)
        with self._outage_lock:
            if self._outage_since is None and self._last_frame_at is not None:
                self._outage_since = self._last_frame_at
                self._outage_count += 1

    def _delivered(self, now: float) -> None:
        """A frame came: an outage (if any) is over."""
        with self._outage_lock:
            self._last_frame_at = now
            since, self._outage_since = self._outage_since, None
            if since is not None:
                self._outage_total_s += now - since
                self._outage_longest_s = max(self._outage_longest_s, now - since)
        if self._failure is not None:
            self._failure = None
            if since is None:
                log.info("opened %s: first frame after %.1f s", self.spec.name, now - self._started)
            else:
                log.info("reopened %s: frames again after %.1f s", self.spec.name, now - since)

    def _loop(self) -> None:
        pacer = _Pacer(
            min_gap=1.0 / self.config.max_fps if self.config.max_fps > 0 else 0.0,
            realtime=not self.spec.live
            and self.spec.kind == "file"
            and self.config.file_pacing == "realtime",
        )
        while not self._stop.is_set():
            reader = self._reader
            if reader is None:
                if not self._reopen():
                    return
                continue
            started = time.perf_counter()
            failure: CaptureError | None = None
            try:
                got = reader.read()
            except CaptureError as exc:  # a stream stalled, ended or failed: it says why
                got, failure = None, exc
            if got is None:
                if not self._read_failed(reader, failure):
                    return
                continue
            self.stats.add((time.perf_counter() - started) * 1000)
            self._failures = 0
            self.state = "running"
            if not self._hand_over(*got, pacer):
                return
        self.state = "stopped"

    def _reopen(self) -> bool:
        """No reader: end a file or folder; for a live source wait out the announced retry
        (announcing it first if the source could not even be opened) and open it again.
        False when the capture ends here."""
        if not self.spec.live:
            self.state = "ended"
            return False
        if self._failure is not None:
            if self._retry_in is None:  # the source could not be opened
                self._failures += 1
                self._retry_in = self._announce_retry(self._failures, self._failure)
                if self._retry_in is None:
                    return False
            self._wait(self._retry_in, self._failure)
            self._retry_in = None
            if self._stop.is_set():
                return True  # the loop sees the stop and ends "stopped"
        self._reader = self._try_open()
        return True

    def _read_failed(self, reader: Reader, failure: CaptureError | None) -> bool:
        """The reader gave no frame: a file or folder ended; a live source is lost and its
        retry announced. False when the capture ends here."""
        self._reader = None
        self.frames_corrupt += reader.corrupt
        if not self.spec.live:
            reader.close()
            self._end_of_file()
            return False
        if self._stop.is_set():
            reader.close()
            self.state = "stopped"
            return False
        why = failure or CaptureError(f"lost {self.spec.kind} {self.spec.name} (no frame)")
        self._lost(why)
        self._failures += 1
        # Reported before the reader is closed: on a busy machine closing (which joins
        # the decoder's threads) can take a while, and the report must not wait for it.
        self._retry_in = self._announce_retry(self._failures, why)
        reader.close()
        return self._retry_in is not None

    def _hand_over(self, image: Image, pts: float | None, pacer: _Pacer) -> bool:
        """Stamp a frame read and queue it, unless the frame-rate cap skips it (a file read
        in real time waits for its moment first). False when the capture ends here."""
        now = time.monotonic()
        self._delivered(now)
        if self.spec.kind == "folder":
            t = self.frames_read * STILL_STEP_S
        elif pts is not None:
            t = pts
        else:
            t = now - self._started
        index = self.frames_read
        self.frames_read += 1
        if pacer.skips(t):
            self.frames_skipped += 1
        else:
            due = pacer.due(now, t)
            if due is not None and due > now:
                self._stop.wait(due - now)
            frame = Frame(index, image, t, datetime.now(UTC), time.monotonic())
            if not self.queue.put(frame):
                self.state = "stopped"  # the queue was closed: the run is stopping
                return False
        if self.max_frames is not None and self.frames_read >= self.max_frames:
            self.state = "ended"
            return False
        return True

    def _end_of_file(self) -> None:
        """A file or folder ended: report undecodable frames; one that gave none fails."""
        if self.frames_read == 0:
            self.state = "failed"
            self.error = CaptureError(
                "no frame of the video could be decoded (damaged, truncated, or not a video)"
                if self.spec.kind == "file"
                else "not one image of the folder could be read"
            )
            return
        self.state = "ended"
        if self.frames_corrupt:
            log.warning(
                "end of %s after %d frames; %d could not be decoded and were skipped",
                self.spec.name,
                self.frames_read,
                self.frames_corrupt,
            )
        else:
            log.info("end of %s after %d frames", self.spec.name, self.frames_read)

    def describe_end(self) -> str:
        """Why the capture ended, for the run summary."""
        if self.state == "lost":
            return f"source lost ({self.last_error})"
        if self.state == "failed":
            return f"capture failed ({self.error})"
        if self.state == "stopped":
            return "stopped"
        if self.max_frames is not None and self.frames_read >= self.max_frames:
            return f"read {self.max_frames} frames (--max-frames)"
        return "end of source"
