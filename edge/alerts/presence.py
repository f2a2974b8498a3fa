"""What a device says about itself on MQTT: its retained status and its heartbeat's audit heads.

The publisher (:mod:`edge.alerts.publisher`) sends them; this module only builds them. The
heartbeat's ``audit_head`` and ``audit_links`` let dispatch hold on to the device's audit chain:
each heartbeat re-reads the heads of the last few as the log has them now, so a log that was cut
and then written past shows (docs/alerts.md, "Heartbeat").
"""

from __future__ import annotations

import json
import logging
from collections import deque
from dataclasses import dataclass
from typing import Any

from edge import __version__
from edge.alerts.schema import ALERT_SCHEMA
from edge.audit import AuditLog
from edge.clock import utc_rfc3339
from edge.errors import AuditError

log = logging.getLogger(__name__)

AUDIT_LINKS = 3  # earlier heartbeat heads re-checked in each heartbeat


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


class AuditHeads:
    """The audit heads reported in heartbeats (seq, hash, file offset), re-checked in later ones.

    ``continuing`` (the device's own service) starts from the log's current head, so the first
    heartbeat already links to where the previous run left off."""

    def __init__(self, audit: AuditLog | None, *, continuing: bool) -> None:
        self.audit = audit
        self._reported: deque[tuple[int, str, int]] = deque(maxlen=AUDIT_LINKS)
        if audit is not None and continuing:
            try:
                head, offset = audit.anchor()
                if head.seq:
                    self._reported.append((head.seq, head.hash, offset))
            except AuditError as exc:
                log.error("%s", exc)

    def report(self, document: dict[str, Any]) -> None:
        """Add ``audit_head`` (and ``audit_links``) to a heartbeat ``document``."""
        if self.audit is None:
            return
        try:
            head, offset = self.audit.anchor()
            document["audit_head"] = {"seq": head.seq, "hash": head.hash}
            # Each head reported before, as found in the file now: a hash of null (or another
            # one) tells dispatch the chain it saw does not continue into this head.
            links = [
                {"seq": seq, "hash": self.audit.hash_at(at, seq)}
                for seq, _, at in self._reported
                if seq != head.seq
            ]
            if links:
                document["audit_links"] = links
            if head.seq and (not self._reported or self._reported[-1][0] != head.seq):
                self._reported.append((head.seq, head.hash, offset))
        except AuditError as exc:
            log.error("%s", exc)
