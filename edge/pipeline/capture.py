"""Reading images and video frames into BGR uint8 arrays, refusing bad input clearly.

Stills: :func:`read_image` and :func:`decode_image`. Video: :class:`Capture` reads a source
(:func:`edge.pipeline.source.parse_source`: a file, a folder of stills, a camera, a stream) on
its own thread into a :class:`FrameQueue`, reconnecting with backoff when a live source fails and
counting its outages. Files and cameras are read with OpenCV, network streams with PyAV
(:mod:`edge.pipeline.stream`). A live source never waits for inference: when the queue is full
its oldest frame is dropped and counted.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from edge.config.capture import CaptureConfig
from edge.errors import CaptureError, ImageError, SourceError, StreamError
from edge.pipeline.metrics import StageStats
from edge.pipeline.source import SourceSpec
from edge.pipeline.stream import PROBED_CAUSES, REFUSING_CAUSES, StreamReader, host_port, reachable
from edge.system.inputs import MAX_IMAGE_BYTES, read_bounded
from edge.types import Image

log = logging.getLogger(__name__)

# A 6000x6000 photo is the largest we accept: beyond that the decode alone costs more memory
# than a Raspberry Pi should spend on one frame, and no camera we target produces it.
MAX_PIXELS = 36_000_000
_JPEG_START, _JPEG_END = b"\xff\xd8", b"\xff\xd9"
# OpenCV prints its own decoder complaints to stderr; every failure here becomes one ImageError
# line instead, so its logging is silenced where images enter.
cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)


def decode_image(data: bytes, name: str = "image") -> Image:
    """Decode image bytes to BGR uint8; 16-bit, grey, alpha and CMYK inputs are converted."""
    if not data:
        raise ImageError(f"{name}: empty file")
    if data.startswith(_JPEG_START) and _JPEG_END not in data[-4096:]:
        # libjpeg "recovers" a truncated JPEG by painting the missing part grey; refuse instead.
        raise ImageError(f"{name}: truncated JPEG (no end-of-image marker)")
    buffer = np.frombuffer(data, dtype=np.uint8)
    too_large = f"{name}: image too large (over {MAX_PIXELS // 1_000_000} megapixels)"
    try:
        image = cv2.imdecode(buffer, cv2.IMREAD_COLOR)
    except cv2.error as exc:
        if "MAX_IMAGE_PIXELS" in str(exc):  # refused from the header (see edge/__init__.py)
            raise ImageError(too_large) from exc
        raise ImageError(f"{name}: cannot decode image ({exc.err or exc})") from exc
    if image is None:
        raise ImageError(f"{name}: not an image, or a corrupt or truncated one")
    height, width = image.shape[:2]
    if height * width > MAX_PIXELS:  # OPENCV_IO_MAX_IMAGE_PIXELS was set higher by the user
        raise ImageError(too_large)
    return np.ascontiguousarray(image, dtype=np.uint8)


def read_image(path: Path) -> Image:
    """Read an image file as BGR uint8 (H, W, 3); any problem is one :class:`ImageError`.

    Only a regular file of at most :data:`MAX_IMAGE_BYTES` is read: a FIFO, a device (a
    symlink to /dev/zero) or a directory is refused before reading."""
    return decode_image(read_bounded(path, MAX_IMAGE_BYTES, "image", ImageError), str(path))


# --- video sources ------------------------------------------------------------------------------

# libav prints its own complaints about damaged files to stderr; Capture reports them once
# instead. Read when OpenCV's FFmpeg backend first opens something.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

STILL_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
# The stills of a folder are unrelated photos: the source clock steps this far from one to the
# next, so that no track (and no cooldown) ever spans two of them.
STILL_STEP_S = 3600.0
_MAX_SANE_FPS = 240.0
# A failed read of a file is not its end: damaged data makes the decoder fail and then pick up
# again at the next good frame (OpenCV's own read already skips up to 512 bad packets). Only
# this many failed reads in a row, or a failure once the declared frame count is reached, end
# a file. At the real end each failed read returns at once, so the bound costs nothing.
MAX_FAILED_READS = 50
_DECODE_WARNINGS = 5  # damaged stretches logged one by one; the end-of-file line counts them all


@dataclass(frozen=True, eq=False)
class Frame:
    """One frame as read from a source."""

    index: int  # 0-based count of frames read from the source (a file's own frame number)
    image: Image
    t: float  # seconds on the source clock: media time for files, since start for live sources
    wall: datetime  # UTC wall-clock time at which it was read
    read_at: float  # time.monotonic() at which it was read (for latency)


class VideoReader:
    """One open OpenCV capture of a file or camera."""

    def __init__(self, spec: SourceSpec) -> None:
        self.spec = spec
        self.fps: float | None = None
        self.frame_size: tuple[int, int] | None = None  # width, height, if the source says
        self.frame_count = 0  # frames a file declares (0: unknown)
        self.decoded = 0  # frames read
        self.damaged = 0  # stretches of undecodable data skipped (failed reads before a frame)
        self._failed = 0  # failed reads in a row
        self._cap: cv2.VideoCapture | None = None

    def open(self) -> None:
        spec = self.spec
        try:
            if spec.kind == "camera":
                device: int | str = int(spec.target) if spec.target.isdigit() else spec.target
                cap = cv2.VideoCapture(device, cv2.CAP_V4L2)
                if not cap.isOpened():
                    cap.release()
                    cap = cv2.VideoCapture(device, cv2.CAP_ANY)
            else:
                cap = cv2.VideoCapture(spec.target, cv2.CAP_FFMPEG)
        except cv2.error as exc:
            raise CaptureError(f"cannot open {spec.name}: {exc.err or exc}") from exc
        if not cap.isOpened():
            cap.release()
            what = "video" if spec.kind == "file" else spec.kind
            raise CaptureError(f"cannot open {what} {spec.name}")
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self.fps = fps if 0.0 < fps <= _MAX_SANE_FPS else None
        width, height = (
            int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
            int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
        )
        self.frame_size = (width, height) if width > 0 and height > 0 else None
        if spec.kind == "file":
            self.frame_count = max(int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0), 0)
        self._cap = cap

    @property
    def corrupt(self) -> int:
        """Frames of a file that could not be decoded: how many fewer it gave than it declares,
        or (no declared count) the damaged stretches skipped. Final once :meth:`read` ended."""
        if self.frame_count:
            return max(self.frame_count - self.decoded, 0)
        return self.damaged

    def read(self) -> tuple[Image, float | None] | None:
        """The next frame and, for a file, its media time in seconds; None at the end or when
        the source fails. A file skips undecodable frames and reads on to its real end."""
        while self._cap is not None:
            try:
                ok, image = self._cap.read()
            except cv2.error as exc:
                log.warning("%s: read failed: %s", self.spec.name, exc.err or exc)
                ok, image = False, None
            if ok and image is not None:
                if self._failed:
                    self.damaged += 1
                    self._failed = 0
                self.decoded += 1
                pts = None
                if self.spec.kind == "file":
                    pts = float(self._cap.get(cv2.CAP_PROP_POS_MSEC)) / 1000.0
                return np.ascontiguousarray(image, dtype=np.uint8), pts
            if self.spec.kind != "file":
                return None  # a live source: Capture reconnects
            if self.frame_count and self.decoded >= self.frame_count:
                return None  # the declared end
            self._failed += 1
            if self._failed >= MAX_FAILED_READS:
                return None  # nothing decodes any more: the end, or damage up to it
            if self._failed == 1 and self.damaged < _DECODE_WARNINGS:
                log.warning(
                    "%s: cannot decode the frame after frame %d (damaged data); skipping it",
                    self.spec.name,
                    self.decoded,
                )
        return None

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


class FolderReader:
    """The still images of a folder, in name order; unreadable ones are skipped with a warning."""

    def __init__(self, spec: SourceSpec) -> None:
        self.spec = spec
        self.fps: float | None = None
        self.corrupt = 0  # stills that could not be read
        self._paths: list[Path] = []
        self._next = 0

    def open(self) -> None:
        folder = Path(self.spec.target)
        try:
            self._paths = sorted(
                p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in STILL_SUFFIXES
            )
        except OSError as exc:
            raise CaptureError(f"cannot read folder {folder}: {exc.strerror or exc}") from exc
        if not self._paths:
            raise SourceError(
                f"folder {folder} holds no image ({', '.join(sorted(STILL_SUFFIXES))})"
            )

    def read(self) -> tuple[Image, float | None] | None:
        while self._next < len(self._paths):
            path = self._paths[self._next]
            self._next += 1
            try:
                return read_image(path), None
            except ImageError as exc:
                self.corrupt += 1
                log.warning("skipping %s", exc)
        return None

    def close(self) -> None:
        self._paths = []


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


CaptureState = Literal["starting", "running", "reconnecting", "ended", "lost", "stopped", "failed"]
Reader = VideoReader | FolderReader | StreamReader
_MAX_DOUBLINGS = 30  # the backoff reaches any reconnect_max_s long before; bounds 2**n


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
        live = self.spec.live
        failures = 0
        realtime = not live and self.spec.kind == "file" and self.config.file_pacing == "realtime"
        min_gap = 1.0 / self.config.max_fps if self.config.max_fps > 0 else 0.0
        last_emitted: float | None = None
        pace_origin: tuple[float, float] | None = None  # (monotonic, media time) of frame 0
        retry_in: float | None = None  # the wait already announced for a lost source
        while not self._stop.is_set():
            if self._reader is None:
                if not live:
                    self.state = "ended"
                    return
                if self._failure is not None:
                    if retry_in is None:  # the source could not be opened
                        failures += 1
                        retry_in = self._announce_retry(failures, self._failure)
                        if retry_in is None:
                            return
                    self._wait(retry_in, self._failure)
                    retry_in = None
                    if self._stop.is_set():
                        break
                self._reader = self._try_open()
                continue
            started = time.perf_counter()
            failure: CaptureError | None = None
            try:
                got = self._reader.read()
            except CaptureError as exc:  # a stream stalled, ended or failed: it says why
                got, failure = None, exc
            if got is None:
                reader, self._reader = self._reader, None
                self.frames_corrupt += reader.corrupt
                if not live:
                    reader.close()
                    self._end_of_file()
                    return
                if self._stop.is_set():
                    reader.close()
                    self.state = "stopped"
                    return
                why = failure or CaptureError(f"lost {self.spec.kind} {self.spec.name} (no frame)")
                self._lost(why)
                failures += 1
                # Reported before the reader is closed: on a busy machine closing (which joins
                # the decoder's threads) can take a while, and the report must not wait for it.
                retry_in = self._announce_retry(failures, why)
                reader.close()
                if retry_in is None:
                    return
                continue
            self.stats.add((time.perf_counter() - started) * 1000)
            failures = 0
            self.state = "running"
            image, pts = got
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
            if min_gap and last_emitted is not None and t - last_emitted < min_gap * 0.999:
                self.frames_skipped += 1
            else:
                last_emitted = t
                if realtime:
                    if pace_origin is None:
                        pace_origin = (now, t)
                    due = pace_origin[0] + (t - pace_origin[1])
                    if due > now:
                        self._stop.wait(due - now)
                frame = Frame(index, image, t, datetime.now(UTC), time.monotonic())
                if not self.queue.put(frame):
                    self.state = "stopped"  # the queue was closed: the run is stopping
                    return
            if self.max_frames is not None and self.frames_read >= self.max_frames:
                self.state = "ended"
                return
        self.state = "stopped"

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
