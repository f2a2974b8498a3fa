"""Network streams (RTSP, RTMP, HTTP): opened and read through PyAV, so that a failure has a cause.

OpenCV's FFmpeg backend reports a stream that cannot be opened only as "not opened", and its
read timeout is reset by every packet FFmpeg hands out: after an H.264 stream stops, the parser's
held-back packet and the decoder's delayed frames come out one per timeout, so a stall was seen
only after three timeouts (30 s with the default 10 s) and a 25 s stall not at all. PyAV raises
FFmpeg's own errors (connection refused, 401, 404, ...), which :func:`open_error` turns into one
:class:`StreamError` line naming the cause and the fix, and :class:`StreamReader` keeps its own
deadline: no frame for ``read_timeout_s`` is a stall, whatever FFmpeg still hands out.
"""

from __future__ import annotations

import errno
import socket
import time
from collections import deque
from collections.abc import Iterator
from urllib.parse import urlsplit

import av
import av.error
import numpy as np
from av.container import InputContainer
from av.packet import Packet
from av.stream import Stream
from av.video.frame import VideoFrame
from av.video.stream import VideoStream

from edge.config.capture import CaptureConfig
from edge.errors import StreamError
from edge.pipeline.source import SourceSpec
from edge.types import Image

DEFAULT_PORTS = {"rtsp": 554, "rtsps": 322, "rtmp": 1935, "http": 80, "https": 443}
# Nothing accepted the connection: worth probing with a plain TCP connect while waiting. A
# timeout or stall counts too (a frozen server's kernel still accepts, so the probe lets the next
# attempt start at once; each attempt is itself bounded by its timeout).
PROBED_CAUSES = frozenset({"refused", "unresolved", "unreachable", "timeout", "stalled"})
# The server is there and says no: retrying will not help until someone fixes the URL or the
# camera's accounts, so on the first open this ends the run (unless capture.max_reconnects says
# to keep trying).
REFUSING_CAUSES = frozenset({"not found", "unauthorized", "forbidden"})
_MAX_SANE_FPS = 240.0
# How much of a new stream FFmpeg reads to learn its frame size and rate before the first frame
# is handed out. Its default (up to 5 s; 0.9 s on a 25 fps RTSP stream) is for files; a camera
# states most of it in its SDP, and a reconnect should not cost a second. Measured on
# gst-rtsp-server at 25 fps: opening took 0.6 s with 0.5 and 0.35 s with 0.25, the rate found
# every time.
ANALYZE_S = 0.25


def host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "", parts.port or DEFAULT_PORTS.get(parts.scheme.lower(), 0)


def reachable(url: str, timeout_s: float) -> bool:
    """Whether the stream's host accepts a TCP connection within ``timeout_s`` (cheap: no
    protocol is spoken)."""
    host, port = host_port(url)
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def open_error(
    spec: SourceSpec, exc: av.error.FFmpegError, config: CaptureConfig, waited_s: float
) -> StreamError:
    """FFmpeg's refusal of ``spec`` (after ``waited_s``) as one line that names the cause and
    what to check.

    FFmpeg's own message is never used whole: it repeats the URL, credentials included."""
    host, port = host_port(spec.target)
    parts = urlsplit(spec.target)
    where = f"{host}:{port}"
    if isinstance(exc, av.error.ConnectionRefusedError):
        return StreamError(
            "refused",
            f"cannot open stream {spec.name}: connection refused by {where} (nothing listens "
            "there: is the camera or server running, and is the port right?)",
        )
    if isinstance(exc, av.error.HTTPNotFoundError):
        return StreamError(
            "not found",
            f"cannot open stream {spec.name}: not found (the server at {where} answered 404 "
            f"for path {parts.path or '/'!r}: check the path in the URL)",
        )
    if isinstance(exc, av.error.HTTPUnauthorizedError):
        fix = (
            "check the user name and password in the URL"
            if parts.username is not None
            else f"the URL needs them: {parts.scheme}://USER:PASSWORD@{parts.netloc}{parts.path}"
        )
        return StreamError(
            "unauthorized",
            f"cannot open stream {spec.name}: unauthorized (the server at {where} answered 401: "
            f"{fix})",
        )
    if isinstance(exc, av.error.HTTPForbiddenError):
        return StreamError(
            "forbidden",
            f"cannot open stream {spec.name}: forbidden (the server at {where} answered 403: "
            "this account may not watch this stream)",
        )
    # Interrupted by the open timeout, FFmpeg's RTSP client reports "invalid data" (it read no
    # reply): the time it took says what happened.
    if isinstance(exc, av.error.ExitError | av.error.TimeoutError) or (
        waited_s >= config.open_timeout_s and not isinstance(exc, av.error.HTTPError)
    ):
        return StreamError(
            "timeout",
            f"cannot open stream {spec.name}: no answer from {where} within "
            f"{config.open_timeout_s:g} s (capture.open_timeout_s)",
        )
    if exc.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
        return StreamError(
            "unreachable", f"cannot open stream {spec.name}: no route to {host} ({exc.strerror})"
        )
    if exc.errno == errno.EIO:  # what FFmpeg returns when the host name does not resolve
        try:
            socket.getaddrinfo(host, port)
        except socket.gaierror as dns:
            return StreamError(
                "unresolved",
                f"cannot open stream {spec.name}: cannot resolve host {host!r} ({dns.strerror})",
            )
    if isinstance(exc, av.error.HTTPError):
        return StreamError(
            "server error",
            f"cannot open stream {spec.name}: the server at {where} answered with an error "
            f"({exc.strerror})",
        )
    return StreamError("failed", f"cannot open stream {spec.name}: {exc.strerror}")


class StreamReader:
    """One open network stream. :meth:`read` returns frames until the stream fails, and then
    raises :class:`StreamError` (cause ``stalled`` or ``ended``)."""

    def __init__(self, spec: SourceSpec, config: CaptureConfig) -> None:
        self.spec = spec
        self.config = config
        self.fps: float | None = None
        self.frame_size: tuple[int, int] | None = None
        self.corrupt = 0  # packets that could not be decoded (damaged, or lost over UDP)
        self._container: InputContainer | None = None
        self._video: VideoStream | None = None
        self._packets: Iterator[Packet[Stream]] = iter(())
        self._frames: deque[VideoFrame] = deque()
        self._last_frame_at = 0.0

    def open(self) -> None:
        spec, config = self.spec, self.config
        options = {"analyzeduration": str(round(ANALYZE_S * 1_000_000))}
        if spec.target.lower().startswith("rtsp"):
            options["rtsp_transport"] = config.rtsp_transport
        started = time.monotonic()
        try:
            container = av.open(
                spec.target,
                options=options,
                timeout=(config.open_timeout_s, config.read_timeout_s),
            )
        except av.error.FFmpegError as exc:
            raise open_error(spec, exc, config, time.monotonic() - started) from exc
        if not container.streams.video:
            container.close()
            raise StreamError("failed", f"cannot open stream {spec.name}: it has no video")
        video = container.streams.video[0]
        rate = video.average_rate or video.guessed_rate
        fps = float(rate) if rate else 0.0
        self.fps = fps if 0.0 < fps <= _MAX_SANE_FPS else None
        width, height = video.codec_context.width, video.codec_context.height
        self.frame_size = (width, height) if width > 0 and height > 0 else None
        self._container = container
        self._video = video
        self._packets = container.demux()  # every stream's packets: each one checks the deadline
        self._last_frame_at = time.monotonic()

    def read(self) -> tuple[Image, float | None]:
        """The next frame (live: no media time). Raises :class:`StreamError` when no frame came
        for ``read_timeout_s``, when the server ended the stream, or on a read error."""
        while not self._frames:
            self._frames.extend(self._next_frames())
        self._last_frame_at = time.monotonic()
        image = self._frames.popleft().to_ndarray(format="bgr24")
        return np.ascontiguousarray(image, dtype=np.uint8), None

    def _next_frames(self) -> list[VideoFrame]:
        name, timeout = self.spec.name, self.config.read_timeout_s
        try:
            packet = next(self._packets)
        except StopIteration:
            raise StreamError("ended", f"lost stream {name}: the server ended it") from None
        except av.error.ExitError:  # FFmpeg's read timed out: not one byte for read_timeout_s
            packet = None
        except av.error.FFmpegError as exc:
            raise StreamError("ended", f"lost stream {name}: read failed ({exc.strerror})") from exc
        # FFmpeg's timeout restarts with every packet it returns, and after a stop it still
        # returns what its parser held back: the deadline is kept here, from the last frame.
        silent = time.monotonic() - self._last_frame_at
        if packet is None or silent > timeout:
            raise StreamError(
                "stalled",
                f"stream {name} stalled: no frame for {silent:.1f} s (capture.read_timeout_s "
                f"{timeout:g} s)",
            )
        if packet.stream is not self._video:
            return []
        try:
            return [f for f in packet.decode() if isinstance(f, VideoFrame)]
        except av.error.FFmpegError:  # a damaged packet: the decoder picks up at the next one
            self.corrupt += 1
            return []

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None
