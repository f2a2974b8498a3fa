"""`edge dispatch serve` as a process, as an operator starts it: its port, its signals."""

from __future__ import annotations

import signal
import socket
import subprocess
from pathlib import Path

from mqtt_fixtures import Mosquitto
from serve_helpers import edge_env, serve_argv, serving


def test_a_taken_port_is_one_line_naming_listen_before_any_mqtt_connection(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            serve_argv(mosquitto.port, port, tmp_path / "centre"),
            env=edge_env(),
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
    with serving(mosquitto.port, tmp_path / "centre") as server:
        # (What the test above looks for when it says serve did not connect.)
        assert "edge-dispatch" in mosquitto.log_tail(200)
        server.send_signal(signal.SIGINT)
        assert server.wait(60) == 0, server.communicate()[1]
