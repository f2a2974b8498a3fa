"""One object for the recognition pipeline: audit log + outbox + MQTT publisher, from config.

with AlertService(config) as alerts:          # starts the publisher thread
    alerts.status(model_id="mobilefacenet-fp32", watchlist_id="wl", watchlist_version="7")
    alert = alerts.hit(hit, watchlist=WatchlistRef(id="wl", version="7"),
                       model_id="mobilefacenet-fp32")      # hit: a decide.Hit
    alert.alert_id                            # committed to the outbox, sent in the background
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from edge import audit as audit_kinds
from edge.alerts.model import Alert, HitLike, Location, Review, WatchlistRef
from edge.alerts.outbox import Outbox
from edge.alerts.publisher import AlertPublisher, DeviceStatus
from edge.audit import AuditLog, Head
from edge.config import Config
from edge.types import ContextFrame


class AlertService:
    """Audit log, outbox and publisher wired together for one device.

    ``as_tool=True`` is for short-lived commands (``edge alerts test``, ``edge outbox flush``):
    a separate client id and a clean session, and no status, last will, heartbeat or review
    subscription, so the device's own service is not disturbed. Tools still subscribe to
    dispatch's acks (``alerts.require_dispatch_ack``), so they see their alerts delivered.
    """

    def __init__(
        self,
        config: Config,
        *,
        state_dir: Path | None = None,
        as_tool: bool = False,
        password: str | None = None,
        status: DeviceStatus | None = None,
        stats_provider: Callable[[], Mapping[str, Any]] | None = None,
        on_review: Callable[[Review], None] | None = None,
    ) -> None:
        self.config = config
        paths = config.paths(state_dir)
        self.audit = AuditLog(paths.audit, fsync=config.audit.fsync)
        try:
            self.outbox = Outbox(paths.outbox, config.outbox, audit=self.audit)
            self.publisher = AlertPublisher(
                config.mqtt,
                config.device,
                self.outbox,
                self.audit,
                password=password,
                client_id_suffix=f"-tool-{_short_random()}" if as_tool else "",
                persistent_session=False if as_tool else None,
                publish_status=not as_tool,
                subscribe_reviews=not as_tool,
                heartbeat=not as_tool,
                status=status,
                stats_provider=stats_provider,
                on_review=on_review,
                alerts=config.alerts,
            )
        except BaseException:
            if hasattr(self, "outbox"):
                self.outbox.close()
            self.audit.close()
            raise
        self.outbox.on_enqueue = self.publisher.wake

    def start(self) -> None:
        self.publisher.start()

    def stop(self, drain_timeout_s: float = 2.0) -> None:
        self.publisher.stop(drain_timeout_s)
        self.outbox.close()
        self.audit.close()

    def __enter__(self) -> AlertService:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def hit(
        self, hit: HitLike, *, watchlist: WatchlistRef, model_id: str, test: bool = False
    ) -> Alert:
        """Make the alert for ``hit`` on this device (location, crop and context policy from
        config), commit it to the outbox and audit the hit; returns the alert as committed.
        Sending happens in the background."""
        location = self.config.device.location
        alert = Alert.from_hit(
            hit,
            device_id=self.config.device.id,
            watchlist=watchlist,
            model_id=model_id,
            location=None if location is None else Location.model_validate(location.model_dump()),
            content=self.config.alerts,
            test=test,
        )
        self.outbox.enqueue(alert)
        return alert

    def test_hit(
        self,
        label: str,
        track_id: int,
        *,
        source: str = "test",
        entry_id: str = "test",
        context: ContextFrame | None = None,
    ) -> str:
        """Commit an alert marked ``test: true`` (``edge alerts test``, benchmarks); it travels
        exactly as a real one. ``source`` names the watchlist and model. Returns its id."""
        hit = _TestHit(track_id=track_id, entry_id=entry_id, label=label, context=context)
        alert = self.hit(
            hit, watchlist=WatchlistRef(id=source, version="0"), model_id=source, test=True
        )
        return alert.alert_id

    def status(
        self,
        *,
        model_id: str | None,
        watchlist_id: str | None,
        watchlist_version: str | int | None,
    ) -> None:
        """Set what the retained 'online' status reports (republished if connected)."""
        self.publisher.set_status(
            DeviceStatus(
                model_id=model_id,
                watchlist_id=watchlist_id,
                watchlist_version=None if watchlist_version is None else str(watchlist_version),
            )
        )

    def watchlist_changed(
        self, *, watchlist_id: str, version: str | int, change: str, **detail: Any
    ) -> Head:
        """Audit a watchlist change (``change``: e.g. 'loaded', 'entry_added', 'entry_removed')."""
        return self.audit.append(
            audit_kinds.WATCHLIST_CHANGE,
            {"watchlist_id": watchlist_id, "version": str(version), "change": change, **detail},
        )


@dataclass(frozen=True)
class _TestHit:
    """A made-up sighting for a test alert: a perfect score, now, no crop."""

    track_id: int
    entry_id: str
    label: str
    context: ContextFrame | None = None
    score: float = 1.0
    threshold: float = 1.0
    quality: float = 1.0
    event_time: datetime | None = None
    crop_jpeg: bytes | None = None


def _short_random() -> str:
    import secrets

    return secrets.token_hex(3)
