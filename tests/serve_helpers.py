"""`edge dispatch serve` as a process, started as an operator starts it, for the tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from mqtt_fixtures import free_port
from paths import REPO


def edge_env(**extra: str) -> dict[str, str]:
    """The environment of an `edge` process: this checkout, none of the caller's state."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"EDGE_STATE_DIR", "NOTIFY_SOCKET", "CREDENTIALS_DIRECTORY"}
    }
    env["PYTHONPATH"] = str(REPO)
    env.update(extra)
    return env


def serve_argv(
    broker_port: int, web_port: int, state: Path, config: Path | None = None
) -> list[str]:
    argv = [sys.executable, "-m", "edge", "dispatch", "serve"]
    argv += ["--broker", f"127.0.0.1:{broker_port}", "--listen", f"127.0.0.1:{web_port}"]
    argv += ["--state-dir", str(state)]
    return argv + ([] if config is None else ["--config", str(config)])


@contextmanager
def serving(
    broker_port: int, state: Path, *, config: Path | None = None, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[str]]:
    """A running `edge dispatch serve` whose console answers; SIGTERM and a wait at the end."""
    web_port = free_port()
    server = subprocess.Popen(
        serve_argv(broker_port, web_port, state, config),
        env=env or edge_env(),
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
        yield server
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
