"""Shared helpers for the alert tests: configs, sample alerts, a collecting subscriber."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from deadlines import SHOULD_HAPPEN_S
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from edge.alerts.model import Alert, Location, WatchlistRef
from edge.config import Config, config_from_dict
from edge.config.alerts import AlertsConfig
from edge.types import ContextFrame


def make_config(port: int, **sections: dict[str, Any]) -> Config:
    """A config for tests: device 'cam-1', the given broker port, fast reconnects.

    These tests receive alerts with a plain subscriber (no dispatch), so delivery ends at the
    broker's PUBACK (``alerts.require_dispatch_ack: false``) unless a test asks otherwise; the
    dispatch-ack mode has its own tests (test_dispatch_ack.py)."""
    data: dict[str, Any] = {
        "device": {"id": "cam-1"},
        "alerts": {"require_dispatch_ack": False},
        "mqtt": {
            "host": "127.0.0.1",
            "port": port,
            "reconnect_min_s": 0.05,
            "reconnect_max_s": 0.3,
            "connect_timeout_s": 3,
        },
    }
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    return config_from_dict(data)


@dataclass(frozen=True)
class SampleHit:
    """A decided match as the pipeline hands it over (what :meth:`Alert.from_hit` reads)."""

    track_id: int
    entry_id: str
    label: str
    score: float
    threshold: float
    quality: float
    event_time: datetime | None = None
    crop_jpeg: bytes | None = None
    context: ContextFrame | None = None


def sample_alert(
    n: int = 0,
    *,
    device_id: str = "cam-1",
    watchlist_id: str = "wl-main",
    watchlist_version: str | int = 7,
    model_id: str = "mobilefacenet-fp32",
    location: dict[str, Any] | None = None,
    test: bool = False,
    alert_id: str | None = None,
    crop_max_bytes: int = 32 * 1024,
    context_max_bytes: int = 128 * 1024,
    **hit: Any,
) -> Alert:
    """Alert ``n`` of track ``n`` for entry ``e<n>``; keywords override the hit's fields."""
    fields: dict[str, Any] = {
        "track_id": n,
        "entry_id": f"e{n}",
        "label": hit.pop("entry_label", f"Person {n}"),
        "score": 0.71,
        "threshold": 0.6,
        "quality": 0.83,
    }
    fields.update(hit)
    # Caps below the configured minimum are what the tests of leaving pictures out need.
    content = AlertsConfig.model_construct(
        **{
            **AlertsConfig().model_dump(),
            "crop_max_bytes": crop_max_bytes,
            "context_max_bytes": context_max_bytes,
        }
    )
    return Alert.from_hit(
        SampleHit(**fields),
        device_id=device_id,
        watchlist=WatchlistRef(id=watchlist_id, version=str(watchlist_version)),
        model_id=model_id,
        location=None if location is None else Location(**location),
        content=content,
        test=test,
        alert_id=alert_id,
    )


class Collector:
    """A QoS 1 subscriber that records every payload; reconnects by itself (paho's thread).

    ``persistent=True`` keeps its broker session (clean_session=False), so a broker with
    persistence queues messages for it while it is reconnecting after a broker restart.
    """

    def __init__(
        self, port: int, topic: str, *, persistent: bool = False, client_id: str = "test-collector"
    ) -> None:
        self.topic = topic
        self.messages: list[tuple[str, bytes, bool]] = []
        self.lock = threading.Lock()
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=not persistent,
            protocol=MQTTProtocolVersion.MQTTv311,
        )
        self.client.reconnect_delay_set(0.02, 0.1)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = lambda *args: self.connected.clear()
        self.client.on_subscribe = lambda *args: self.subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect_async("127.0.0.1", port, keepalive=10)
        self.client.loop_start()
        assert self.subscribed.wait(SHOULD_HAPPEN_S), "collector could not subscribe"

    def _on_connect(
        self, client: paho.Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        if not reason.is_failure:
            client.subscribe(self.topic, qos=1)
            self.connected.set()

    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        with self.lock:
            self.messages.append((message.topic, bytes(message.payload), bool(message.retain)))

    def payloads(self) -> list[dict[str, Any]]:
        with self.lock:
            return [json.loads(payload) for _, payload, _ in self.messages]

    def alert_ids(self) -> set[str]:
        return {p["alert_id"] for p in self.payloads() if "alert_id" in p}

    def wait_for(self, predicate: Callable[[Collector], bool], timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if predicate(self):
                return True
            time.sleep(0.02)
        return predicate(self)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def audit_kinds_for(path: Path, alert_id: str) -> list[str]:
    from edge.audit import read_records

    kinds = []
    for record in read_records(path):
        data = record["data"]
        if data.get("alert_id") == alert_id or data.get("alert", {}).get("alert_id") == alert_id:
            kinds.append(record["kind"])
    return kinds
