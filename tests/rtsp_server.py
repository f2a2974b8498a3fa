"""A real RTSP server for the stream tests: GStreamer's gst-rtsp-server on 127.0.0.1, serving
the demo clip's frames (JPEG, or H.264 with a key frame every 0.4 s) at a real-time pace,
optionally behind basic auth.

GStreamer's Python bindings (python3-gi, gir1.2-gst-rtsp-server-1.0) are Debian packages for
the system Python, not for a venv, so the server runs as its own process under /usr/bin/python3
(``python3 rtsp_server.py PORT FRAMES_DIR ...``); :class:`RtspServer` starts it, waits until it
listens, and can stop, kill, freeze (SIGSTOP) and thaw (SIGCONT) it or start it again on the
same port. Tests that need it call :func:`require_rtsp_server`, which skips with the reason when
the packages are missing.
"""

from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import sys
import time
from functools import cache
from pathlib import Path

SYSTEM_PYTHON = "/usr/bin/python3"
MOUNT = "/cam"
READY_S = 30.0  # a loaded 2-core machine takes a few seconds to load GStreamer
PACKAGES = (
    "python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-good gstreamer1.0-plugins-bad"
)
_ELEMENTS = ("appsrc", "jpegparse", "rtpjpegpay", "jpegdec", "openh264enc", "h264parse")


@cache
def _missing() -> str | None:
    """Why the server cannot run here, or None."""
    if not Path(SYSTEM_PYTHON).exists():
        return f"{SYSTEM_PYTHON} not found"
    result = subprocess.run(
        [SYSTEM_PYTHON, __file__, "--check"], capture_output=True, text=True, timeout=60
    )
    return None if result.returncode == 0 else (result.stdout + result.stderr).strip()[-300:]


def require_rtsp_server() -> None:
    import pytest  # here: the server process itself runs under a Python without pytest

    reason = _missing()
    if reason is not None:
        pytest.skip(f"no GStreamer RTSP server: {reason} (apt: {PACKAGES}; scripts/test does it)")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class RtspServer:
    """gst-rtsp-server serving ``frames_dir``'s JPEGs in a loop at ``fps`` on ``rtsp://127.0.0.1:
    PORT/cam``; ``credentials`` (user, password) puts basic auth in front of it."""

    def __init__(
        self,
        frames_dir: Path,
        *,
        codec: str = "jpeg",
        fps: int = 25,
        credentials: tuple[str, str] | None = None,
    ) -> None:
        self.frames_dir = frames_dir
        self.codec = codec
        self.fps = fps
        self.credentials = credentials
        self.port = free_port()
        self._process: subprocess.Popen[bytes] | None = None

    def url(self, path: str = MOUNT, credentials: tuple[str, str] | None = None) -> str:
        login = f"{credentials[0]}:{credentials[1]}@" if credentials else ""
        return f"rtsp://{login}127.0.0.1:{self.port}{path}"

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    def start(self) -> None:
        """Start it (again, on the same port) and return once it listens."""
        assert self._process is None or self._process.poll() is not None
        command = [SYSTEM_PYTHON, __file__, str(self.port), str(self.frames_dir)]
        command += ["--codec", self.codec, "--fps", str(self.fps)]
        if self.credentials:
            command += ["--user", self.credentials[0], "--password", self.credentials[1]]
        self._process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True
        )
        assert self._process.stdout is not None
        deadline = time.monotonic() + READY_S
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self._process.stdout], [], [], 0.5)
            if ready and self._process.stdout.readline().strip() == b"ready":
                return
            if self._process.poll() is not None:
                raise RuntimeError(f"the RTSP server exited ({self._process.returncode})")
        self.kill()
        raise RuntimeError(f"the RTSP server did not start within {READY_S:.0f} s")

    def freeze(self) -> float:
        """SIGSTOP: the kernel keeps its sockets (connections stay open, nothing is sent).
        Returns time.monotonic() at the signal."""
        os.kill(self.pid, signal.SIGSTOP)
        return time.monotonic()

    def thaw(self) -> float:
        """SIGCONT; returns time.monotonic() once the server answers RTSP again (it is
        reachable then: how soon a loaded machine schedules it again is not the client's
        doing)."""
        os.kill(self.pid, signal.SIGCONT)
        return self.wait_answering()

    def wait_answering(self, timeout: float = READY_S) -> float:
        """time.monotonic() at the first answer to an RTSP OPTIONS request."""
        request = f"OPTIONS rtsp://127.0.0.1:{self.port}{MOUNT} RTSP/1.0\r\nCSeq: 1\r\n\r\n"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1.0) as probe:
                    probe.sendall(request.encode("ascii"))
                    if probe.recv(64).startswith(b"RTSP/1.0"):
                        return time.monotonic()
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"the RTSP server did not answer within {timeout:.0f} s")

    def stop(self) -> None:
        """SIGTERM (after SIGCONT, if frozen) and wait: the port is closed."""
        if self._process is None or self._process.poll() is not None:
            return
        os.kill(self.pid, signal.SIGCONT)
        self._process.terminate()
        try:
            self._process.wait(10)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()

    def __enter__(self) -> RtspServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()


# --- the server process (system Python with GStreamer) ------------------------------------------


def check() -> int:
    """``rtsp_server.py --check`` (scripts/test runs it too): 0 if the server can run here."""
    try:
        import gi

        gi.require_version("Gst", "1.0")
        gi.require_version("GstRtspServer", "1.0")
        from gi.repository import Gst, GstRtspServer  # noqa: F401 (importable is the check)
    except (ImportError, ValueError) as exc:
        print(f"{sys.executable} cannot import GstRtspServer: {exc}")
        return 1
    Gst.init(None)
    missing = [name for name in _ELEMENTS if Gst.ElementFactory.find(name) is None]
    if missing:
        print(f"GStreamer elements missing: {' '.join(missing)}")
        return 1
    return 0


def serve(argv: list[str]) -> None:
    import argparse

    import gi

    gi.require_version("Gst", "1.0")
    gi.require_version("GstRtspServer", "1.0")
    from gi.repository import GLib, Gst, GstRtspServer

    parser = argparse.ArgumentParser()
    parser.add_argument("port")
    parser.add_argument("frames", type=Path)
    parser.add_argument("--codec", choices=("jpeg", "h264"), default="jpeg")
    parser.add_argument("--fps", type=int, default=25)
    parser.add_argument("--user")
    parser.add_argument("--password")
    args = parser.parse_args(argv)

    Gst.init(None)
    frames = [path.read_bytes() for path in sorted(args.frames.glob("*.jpg"))]
    caps = f"image/jpeg,framerate={args.fps}/1"
    encode = (
        "jpegparse ! rtpjpegpay name=pay0 pt=26"
        if args.codec == "jpeg"
        else "jpegdec ! videoconvert ! openh264enc gop-size=10 ! h264parse ! "
        "rtph264pay name=pay0 pt=96 config-interval=1"
    )
    factory = GstRtspServer.RTSPMediaFactory()
    # appsrc on a GLib timer: a live, paced source (multifilesrc would run at 1000 fps).
    factory.set_launch(
        f"( appsrc name=src is-live=true format=time do-timestamp=true caps={caps} ! {encode} )"
    )
    factory.set_shared(True)
    sources: list[Gst.Element] = []
    factory.connect(
        "media-configure", lambda _f, media: sources.append(media.get_element().get_by_name("src"))
    )
    pushed = [0]

    def tick() -> bool:
        if sources:
            data = frames[pushed[0] % len(frames)]
            pushed[0] += 1
            sources[-1].emit("push-buffer", Gst.Buffer.new_wrapped(data))
        return True

    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(args.port)
    if args.user:
        auth = GstRtspServer.RTSPAuth()
        token = GstRtspServer.RTSPToken()
        token.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, "viewer")
        auth.add_basic(GstRtspServer.RTSPAuth.make_basic(args.user, args.password), token)
        server.set_auth(auth)
        permissions = GstRtspServer.RTSPPermissions()
        for permission in ("media.factory.access", "media.factory.construct"):
            permissions.add_permission_for_role("viewer", permission, True)
        factory.set_permissions(permissions)
    server.get_mount_points().add_factory(MOUNT, factory)
    GLib.timeout_add(1000 // args.fps, tick)
    if server.attach(None) == 0:
        sys.exit(f"cannot listen on port {args.port}")
    print("ready", flush=True)
    GLib.MainLoop().run()


if __name__ == "__main__":
    if sys.argv[1:] == ["--check"]:
        sys.exit(check())
    serve(sys.argv[1:])
