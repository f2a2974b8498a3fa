"""Shared helpers for the fleet tests: real-model bundles, device configs and processes, a
watcher of the devices' retained topics."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import yaml
from deadlines import SHOULD_HAPPEN_S
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paths import REPO
from watchlist_helpers import Person, build_full, build_next, make_keys, people

from edge.models import embedding_pin
from edge.watchlist.bundle import VerifiedBundle

MODEL = embedding_pin()  # the real pin: device processes check it
LIST_ID = "gate"


def window() -> dict[str, datetime]:
    now = datetime.now(UTC).replace(microsecond=0)
    return {"valid_from": now - timedelta(days=1), "valid_until": now + timedelta(days=30)}


def full_bundle(
    out: Path, persons: list[Person], private_key: Any, version: int, list_id: str = LIST_ID
) -> VerifiedBundle:
    return build_full(
        out, persons, private_key, version=version, list_id=list_id, model=MODEL, **window()
    )


def next_bundles(
    base: Path,
    persons: list[Person],
    private_key: Any,
    public_key: Any,
    version: int,
    out_dir: Path,
) -> tuple[Path, Path]:
    """(full, delta) of ``version`` on top of the full bundle ``base``."""
    delta, full = out_dir / f"v{version}.delta", out_dir / f"v{version}"
    build_next(
        base,
        persons,
        private_key,
        public_key,
        version,
        delta,
        full,
        list_id=LIST_ID,
        model=MODEL,
        **window(),
    )
    return full, delta


def device_config(
    path: Path,
    device_id: str,
    port: int,
    public_key: Path,
    *,
    lists: list[str] | None = None,
    api_port: int | None = None,
    **sync: Any,
) -> Path:
    data: dict[str, Any] = {
        "device": {"id": device_id},
        "mqtt": {
            "host": "127.0.0.1",
            "port": port,
            "reconnect_min_s": 0.05,
            "reconnect_max_s": 0.5,
            "connect_timeout_s": 3,
            "heartbeat_s": 1,
        },
        "audit": {"fsync": False},
        "watchlist": {"public_key": str(public_key)},
        "sync": {"lists": lists or [LIST_ID], "chunk_timeout_s": 5, **sync},
        "api": {"enabled": api_port is not None, "port": api_port or 8787},
    }
    path.write_text(yaml.safe_dump(data))
    return path


class Device:
    """``python -m edge sync --agent`` in its own process, state directory and client id."""

    def __init__(self, name: str, config: Path, state_dir: Path, log_dir: Path) -> None:
        self.name = name
        self.config = config
        self.state_dir = state_dir
        self.log_path = log_dir / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, *extra: str) -> None:
        assert self.process is None
        log = self.log_path.open("ab")
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        env.pop("NOTIFY_SOCKET", None)
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "edge",
                "sync",
                "--agent",
                "--config",
                str(self.config),
                "--state-dir",
                str(self.state_dir),
                *extra,
            ],
            stdout=log,
            stderr=log,
            cwd=REPO,
            env=env,
        )
        log.close()

    def stop(self, timeout_s: float = 15.0) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        self.process = None
        return code

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"

    def installed_version(self) -> int | None:
        current = self.state_dir / "watchlist" / "current"
        if not current.is_symlink():
            return None
        return int(os.readlink(current).rsplit("-v", 1)[1])


class Watcher:
    """Keeps the newest retained/live message of every device topic (status, sync, heartbeat)."""

    def __init__(self, port: int, prefix: str = "edge/v1") -> None:
        self.prefix = prefix
        self.latest: dict[tuple[str, str], dict[str, Any]] = {}
        self.history: list[tuple[float, str, str, dict[str, Any]]] = []
        self.lock = threading.Lock()
        subscribed = threading.Event()
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"watcher-{os.getpid()}-{id(self)}",
            protocol=MQTTProtocolVersion.MQTTv311,
        )
        self.client.reconnect_delay_set(0.05, 0.5)

        def on_connect(client: paho.Client, *args: Any) -> None:
            client.subscribe([(f"{prefix}/+/status", 1), (f"{prefix}/+/sync", 1)])

        self.client.on_connect = on_connect
        self.client.on_subscribe = lambda *args: subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect_async("127.0.0.1", port, keepalive=10)
        self.client.loop_start()
        assert subscribed.wait(SHOULD_HAPPEN_S), "watcher could not subscribe"

    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        parts = message.topic.split("/")
        if not message.payload:
            return
        document = json.loads(message.payload)
        with self.lock:
            self.latest[(parts[-2], parts[-1])] = document
            self.history.append((time.monotonic(), parts[-2], parts[-1], document))

    def status(self, device: str) -> dict[str, Any]:
        with self.lock:
            return dict(self.latest.get((device, "status"), {}))

    def sync(self, device: str) -> dict[str, Any]:
        with self.lock:
            return dict(self.latest.get((device, "sync"), {}))

    def reported_version(self, device: str) -> str | None:
        status = self.status(device)
        wl = status.get("watchlist") if status.get("state") == "online" else None
        return None if not wl else str(wl.get("version"))

    def wait(self, predicate: Callable[[], bool], timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.05)
        return predicate()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def two_versions(tmp_path: Path) -> dict[str, Any]:
    """A v1 full bundle, and v2 as a full bundle and as a delta against v1, with their keys."""
    private_key, public_key, _, pub_path = make_keys(tmp_path)
    team = people(11, 12)
    v1 = tmp_path / "v1"
    full_bundle(v1, team, private_key, version=1)
    v2_full, v2_delta = next_bundles(
        v1, [*team, *people(12, 2, prefix="new")], private_key, public_key, 2, tmp_path
    )
    return {
        "private": private_key,
        "public": public_key,
        "pub_path": pub_path,
        "v1": v1,
        "v2": v2_full,
        "v2_delta": v2_delta,
    }
