"""What a device says about itself on MQTT: its retained status and its heartbeat's audit heads.

The publisher (:mod:`edge.alerts.publisher`) sends them; this module only builds them. The
heartbeat's ``audit_head`` and ``audit_links`` let dispatch hold on to the device's audit chain:
each heartbeat re-reads the heads of the last few as the log has them now, so a log that was cut
and then written past shows (docs/alerts.md, "Heartbeat").
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from edge import __version__
from edge.alerts.schema import ALERT_SCHEMA
from edge.clock import utc_rfc3339

log = logging.getLogger(__name__)


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
