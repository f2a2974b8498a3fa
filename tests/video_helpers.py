"""Video test helpers: the demo clip's frames, a tiny MJPEG-over-HTTP camera that can be told to
cut or stall its stream, and the shared data paths."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import pytest
from recognition_helpers import LFW_DIR, SHARED_DATA

from edge.demo import DEMO_CLIP, DEMO_PUBLIC_KEY, DEMO_WATCHLIST

HAMILTON = SHARED_DATA / "hamilton_clip"
LFW_IMAGES = LFW_DIR / "images"
__all__ = [
    "DEMO_CLIP",
    "DEMO_PUBLIC_KEY",
    "DEMO_WATCHLIST",
    "MjpegCamera",
    "Plan",
    "clip_jpegs",
    "damaged_clip",
]


def require_hamilton() -> Path:
    if not (HAMILTON / "short_hamilton_clip.mp4").is_file():
        pytest.skip(
            f"Hamilton clip not found at {HAMILTON} (../shared/data is not on this machine)"
        )
    return HAMILTON


def damaged_clip(out: Path, damage: str) -> Path:
    """The demo clip (275 frames, an MP4 whose frame data comes before its index), damaged:

    - ``zeroed``: 3,000 bytes in the middle of the file zeroed. OpenCV reads on past them and
      decodes 260 frames; a reader that stops at the first failed read gets 136.
    - ``scrambled``: every byte of the frame data replaced by random bytes, the index kept: the
      file opens and declares 275 frames, and not one of them decodes.
    """
    data = bytearray(DEMO_CLIP.read_bytes())
    if damage == "zeroed":
        middle = len(data) // 2
        data[middle : middle + 3000] = bytes(3000)
    elif damage == "scrambled":
        start = data.index(b"mdat") - 4  # the box holding every frame: size, 'mdat', payload
        size = int.from_bytes(data[start : start + 4], "big")
        rng = random.Random(0)
        data[start + 8 : start + size] = rng.randbytes(size - 8)
    else:
        raise ValueError(damage)
    out.write_bytes(bytes(data))
    return out


@cache
def clip_jpegs() -> tuple[bytes, ...]:
    """Every frame of the demo clip as JPEG bytes."""
    cap = cv2.VideoCapture(str(DEMO_CLIP))
    frames = []
    while True:
        ok, image = cap.read()
        if not ok:
            break
        frames.append(cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes())
    cap.release()
    return tuple(frames)


@dataclass(frozen=True)
class Plan:
    """What one connection gets: frames[start:stop], then the stream is closed, or held open
    without data for ``stall_s`` first."""

    start: int
    stop: int
    stall_s: float = 0.0


class MjpegCamera:
    """An IP camera stand-in: multipart/x-mixed-replace JPEG over HTTP on 127.0.0.1.

    Connection n follows ``plans[n]``; once the plans run out it answers 503 (the camera is
    gone)."""

    def __init__(self, plans: list[Plan], fps: float = 0.0) -> None:
        self.plans = plans
        self.fps = fps
        self.connections = 0
        self.frames_sent = 0
        self._stop = threading.Event()
        camera = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                camera.serve(self)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://user:secret@127.0.0.1:{self._server.server_address[1]}/stream.mjpg"

    def serve(self, handler: BaseHTTPRequestHandler) -> None:
        n = self.connections
        self.connections += 1
        if n >= len(self.plans):
            handler.send_error(503, "camera offline")
            return
        plan = self.plans[n]
        handler.send_response(200)
        handler.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
        handler.end_headers()
        frames = clip_jpegs()
        try:
            for jpeg in frames[plan.start : plan.stop]:
                if self._stop.is_set():
                    return
                handler.wfile.write(
                    b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(jpeg)
                    + jpeg
                    + b"\r\n"
                )
                self.frames_sent += 1
                if self.fps:
                    time.sleep(1 / self.fps)
            handler.wfile.flush()
            if plan.stall_s:
                self._stop.wait(plan.stall_s)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def __enter__(self) -> MjpegCamera:
        clip_jpegs()  # before the first client: encoding the clip takes a while
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()


def lfw_people(count: int) -> Iterator[tuple[str, Path]]:
    """(name, first photo) of the first ``count`` LFW identities, in name order."""
    for folder in sorted(LFW_IMAGES.iterdir())[:count]:
        yield folder.name, sorted(folder.iterdir())[0]
