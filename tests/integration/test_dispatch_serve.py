"""`edge dispatch serve` as a process, as an operator starts it: its port, its signals."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from mqtt_fixtures import Mosquitto, free_port
from paths import REPO


def serve_argv(broker_port: int, web_port: int, state: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "edge",
        "dispatch",
        "serve",
        "--broker",
        f"127.0.0.1:{broker_port}",
        "--listen",
        f"127.0.0.1:{web_port}",
        "--state-dir",
        str(state),
    ]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"EDGE_STATE_DIR", "NOTIFY_SOCKET"}}
    env["PYTHONPATH"] = str(REPO)
    return env


@contextmanager
def serving(broker_port: int, state: Path) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """A running `edge dispatch serve` (its console answering); SIGTERM and a wait at the end."""
    web_port = free_port()
    server = subprocess.Popen(
        serve_argv(broker_port, web_port, state),
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, server.communicate()[1]
            try:
                httpx.get(f"http://127.0.0.1:{web_port}/login", timeout=1)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "edge dispatch serve did not answer"
                time.sleep(0.1)
        yield server, web_port
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def test_a_taken_port_is_one_line_naming_listen_before_any_mqtt_connection(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            serve_argv(mosquitto.port, port, tmp_path / "centre"),
            env=_env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    (line,) = done.stderr.splitlines()  # no uvicorn 'ERROR:', no log of an MQTT connection
    assert line.startswith(f"edge: error: cannot serve the console on 127.0.0.1:{port}: ")
    assert "in use" in line and "--listen HOST:PORT" in line
    assert "edge-dispatch" not in mosquitto.log_tail(200), "serve connected to MQTT first"


def test_sigint_stops_serve_with_status_0_as_its_help_says(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    with serving(mosquitto.port, tmp_path / "centre") as (server, _):
        # (What the test above looks for when it says serve did not connect.)
        assert "edge-dispatch" in mosquitto.log_tail(200)
        server.send_signal(signal.SIGINT)
        assert server.wait(60) == 0, server.communicate()[1]
