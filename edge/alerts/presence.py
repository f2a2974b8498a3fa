"""What a device says about itself on MQTT: its retained status (with the last will that says
'offline' for it) and its retained heartbeat.

:class:`Presence` publishes them on the publisher's connection (:mod:`edge.alerts.publisher`);
the heartbeat carries the audit heads of :class:`edge.audit.HeartbeatHeads`, which let dispatch
hold on to the device's audit chain (docs/alerts.md, "Heartbeat").
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as paho

from edge import __version__
from edge.alerts.schema import ALERT_SCHEMA
from edge.audit import HeartbeatHeads
from edge.clock import utc_rfc3339
from edge.mqtt.topics import DeviceTopics

# The name these lines always had: operators and their log filters know it.
log = logging.getLogger("edge.alerts.publisher")

StatsProvider = Callable[[], Mapping[str, Any]]


@dataclass(frozen=True)
class DeviceStatus:
    """What the retained ``status`` message reports besides the software version."""

    model_id: str | None = None
    watchlist_id: str | None = None
    watchlist_version: str | None = None


def status_payload(
    device_id: str, status: DeviceStatus, state: str, reason: str | None = None
) -> bytes:
    """The retained status: 'online' with the model and watchlist in force, or 'offline' with a
    reason (the last will's 'connection lost' carries no time: the broker sends it later)."""
    document: dict[str, Any] = {
        "state": state,
        "device_id": device_id,
        "software": __version__,
        "alert_schema": ALERT_SCHEMA,
    }
    if state == "online":
        document["time"] = utc_rfc3339()
        document["model"] = status.model_id
        document["watchlist"] = (
            None
            if status.watchlist_id is None
            else {"id": status.watchlist_id, "version": status.watchlist_version}
        )
    elif reason is not None:
        document["reason"] = reason
        if reason != "connection lost":
            document["time"] = utc_rfc3339()
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode("utf-8")


class Presence:
    """The retained status and heartbeat of ``device_id`` on ``client`` (on its loop thread,
    except :meth:`set_status`). ``publish_status`` and ``heartbeat`` say which of the two this
    client owns: a tool's connection owns neither, and so sets no last will."""

    def __init__(
        self,
        client: paho.Client,
        topics: DeviceTopics,
        heads: HeartbeatHeads,
        *,
        publish_status: bool,
        heartbeat: bool,
        status: DeviceStatus | None = None,
        stats_provider: StatsProvider | None = None,
    ) -> None:
        self.client = client
        self.topics = topics
        self.device_id = topics.device_id
        self.heads = heads
        self.publish_status = publish_status
        self.heartbeat = heartbeat
        self._status = status or DeviceStatus()
        self._stats_provider = stats_provider
        self._status_dirty = threading.Event()
        self._started_at = time.monotonic()
        self._last_heartbeat = 0.0
        if publish_status:
            self.client.will_set(
                topics.status,
                status_payload(self.device_id, self._status, "offline", "connection lost"),
                qos=1,
                retain=True,
            )

    def set_status(self, status: DeviceStatus) -> None:
        """New model or watchlist versions (any thread): republished on the next tick."""
        self._status = status
        self._status_dirty.set()

    def connected(self) -> None:
        """A new connection: 'online' now, a heartbeat on the next tick."""
        if self.publish_status:
            self.publish_online()
        self._last_heartbeat = 0.0

    def status_changed(self) -> None:
        """Republish 'online' if :meth:`set_status` changed it."""
        if self._status_dirty.is_set() and self.publish_status:
            self._status_dirty.clear()
            self.publish_online()

    def heartbeat_due(self, now: float, period_s: float) -> bool:
        if not self.heartbeat or now - self._last_heartbeat < period_s:
            return False
        self._last_heartbeat = now
        return True

    def publish_online(self) -> None:
        payload = status_payload(self.device_id, self._status, "online")
        self.client.publish(self.topics.status, payload, qos=1, retain=True)

    def publish_offline(self) -> None:
        """Stopping: 'offline' (if this client owns the status)."""
        if not self.publish_status:
            return
        self.client.publish(
            self.topics.status,
            status_payload(self.device_id, self._status, "offline", "shutdown"),
            qos=1,
            retain=True,
        )

    def publish_heartbeat(self, outbox: Mapping[str, Any], mqtt: Mapping[str, Any]) -> None:
        """The heartbeat: the stats provider's numbers, the outbox's and the connection's
        (``outbox``, ``mqtt``), and the audit heads."""
        document: dict[str, Any] = {}
        if self._stats_provider is not None:
            try:
                document.update(self._stats_provider())
            except Exception:
                log.exception("heartbeat stats provider failed")
        document.update(
            {
                "device_id": self.device_id,
                "time": utc_rfc3339(),
                "uptime_s": round(time.monotonic() - self._started_at, 1),
                "outbox": dict(outbox),
                "mqtt": dict(mqtt),
            }
        )
        self.heads.report(document)
        payload = json.dumps(document, sort_keys=True, separators=(",", ":"), default=str)
        # Retained, so `edge hub devices` shows the last one of every device.
        self.client.publish(self.topics.heartbeat, payload.encode("utf-8"), qos=0, retain=True)
