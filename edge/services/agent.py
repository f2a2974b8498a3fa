"""``edge sync``: the device's management process.

It keeps the installed watchlist in step with the hub (:class:`WatchlistSync`), serves the local
API (:mod:`edge.api.app`) and feeds the systemd watchdog from its main loop. The recognizer
(``edge run``) picks up a newly installed list from the state directory and republishes the
device status with the new version.

With ``--agent`` it also owns the device's MQTT identity (retained status with the installed
list's version, last will, heartbeat, outbox, review decisions) through
:class:`edge.alerts.service.AlertService`: for a device whose recognizer is not running (a
device being staged, a test rig). Never run ``--agent`` beside ``edge run``: both would use the
device's client id and status topic.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from edge import __version__
from edge.alerts.outbox import Outbox
from edge.alerts.service import AlertService
from edge.api.app import (
    TOKEN_SECRET,
    ApiServer,
    HealthReport,
    MetricsSnapshot,
    StageLatency,
    create_app,
)
from edge.audit import AuditLog
from edge.clock import utc_now
from edge.config import Config
from edge.config.secrets import read_secret
from edge.errors import EdgeError, SyncError, WatchlistError
from edge.fleet.sync import WatchlistSync
from edge.models import embedding_model_id
from edge.pipeline.metrics import read_run_metrics
from edge.system.sdnotify import Notifier
from edge.system.signals import stop_on_signals
from edge.watchlist.install import InstallResult, WatchlistStore, open_store

log = logging.getLogger(__name__)

MIN_FREE_BYTES = 64 * 1024 * 1024


def pipeline_fields(run_metrics: Mapping[str, Any]) -> dict[str, Any]:
    """:class:`MetricsSnapshot` fields from ``edge run``'s ``RunReporter.metrics()`` (plus its
    heartbeat ``queues``), for a recognizer that serves the API itself."""
    frames = run_metrics.get("frames") or {}
    alerts = run_metrics.get("alerts") or {}
    latency: dict[str, StageLatency] = {}
    for stage, s in (run_metrics.get("latency_ms") or {}).items():
        mean, p90 = s.get("mean_ms"), s.get("p90_ms")
        latency[stage] = StageLatency(
            count=int(s.get("count") or 0),
            mean_s=None if mean is None else mean / 1000.0,
            p90_s=None if p90 is None else p90 / 1000.0,
        )
    dropped = {
        reason: int(frames[key])
        for reason, key in (
            ("queue_full", "dropped"),
            ("rate_cap", "skipped"),
            ("stopped", "discarded_at_stop"),
        )
        if isinstance(frames.get(key), int)
    }
    fps = run_metrics.get("fps_now", run_metrics.get("fps"))
    return {
        "fps": fps,
        "frames_processed": frames.get("processed"),
        "frames_dropped": dropped,
        "latency": latency,
        "alerts_raised": alerts.get("raised"),
        "alerts_failed": alerts.get("failed"),
        "queues": dict(run_metrics.get("queues") or {}),
    }


class DeviceProvider:
    """What the local API reports, read from the live objects of this process."""

    def __init__(
        self,
        config: Config,
        store: WatchlistStore,
        state_dir: Path,
        *,
        sync: WatchlistSync | None = None,
        alerts: Any = None,
        outbox: Any = None,
        pipeline: Callable[[], Mapping[str, Any] | None] | None = None,
        threads_alive: Callable[[], list[str]] | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.state_dir = state_dir
        self.sync = sync
        self.alerts = alerts
        self.outbox = outbox if outbox is not None else getattr(alerts, "outbox", None)
        self.pipeline = pipeline
        self.threads_alive = threads_alive
        self.started = time.monotonic()

    # --- pieces ------------------------------------------------------------------------------

    def _manifest(self) -> tuple[Any, str] | None:
        try:
            return self.store.active_manifest()
        except WatchlistError:
            return None

    def _outbox_stats(self) -> dict[str, Any] | None:
        if self.outbox is None:
            return None
        try:
            stats: dict[str, Any] = self.outbox.stats().as_dict()
        except EdgeError:
            return None
        return stats

    def _pipeline(self) -> Mapping[str, Any] | None:
        if self.pipeline is None:
            return None
        try:
            return self.pipeline()
        except Exception:
            log.exception("pipeline stats failed")
            return None

    # --- RuntimeProvider ---------------------------------------------------------------------

    def health(self) -> HealthReport:
        reasons: list[str] = []
        warnings: list[str] = []
        dead = self.threads_alive() if self.threads_alive is not None else []
        live = not dead
        reasons += [f"{name} is not running" for name in dead]
        active = None
        try:
            active = self.store.active_manifest()
        except WatchlistError as exc:
            reasons.append(f"the installed watchlist is unusable: {exc}")
        if active is None and not reasons:
            reasons.append(f"no watchlist installed in {self.store.root}")
        elif active is not None:
            manifest = active[0]
            now = utc_now()
            if now >= manifest.valid_until_at:
                reasons.append(f"watchlist {manifest.list_id} expired at {manifest.valid_until}")
            elif now < manifest.valid_from_at:
                reasons.append(
                    f"watchlist {manifest.list_id} is valid only from {manifest.valid_from}"
                )
        if not os.access(self.state_dir, os.W_OK):
            reasons.append(f"state directory {self.state_dir} is not writable")
        else:
            free = shutil.disk_usage(self.state_dir).free
            if free < MIN_FREE_BYTES:
                reasons.append(f"only {free // (1 << 20)} MiB free in {self.state_dir}")
        if self.sync is not None:
            if not self.sync.connected:
                warnings.append(
                    f"watchlist sync is not connected to {self.sync.broker}"
                    + (f": {self.sync.last_error}" if self.sync.last_error else "")
                )
            for lid, entry in self.sync.report.get("lists", {}).items():
                if entry.get("state") in ("refused", "failed"):
                    warnings.append(f"list {lid}: {entry['state']}: {entry.get('detail')}")
        if self.pipeline is not None and self._pipeline() is None:
            warnings.append(
                "no recent heartbeat from the recognizer, nor a fresh run-metrics.json (is edge "
                "run running?)"
            )
        publisher = getattr(self.alerts, "publisher", None)
        if publisher is not None and not publisher.connected:
            warnings.append(
                f"alerts are not connected to {publisher.broker}; they wait in the outbox"
            )
        return HealthReport(
            live=live, ready=live and not reasons, reasons=reasons, warnings=warnings
        )

    def watchlist(self) -> Mapping[str, Any] | None:
        active = self._manifest()
        if active is None:
            return None
        manifest, digest = active
        now = utc_now()
        if now >= manifest.valid_until_at:
            state = "expired"
        elif now < manifest.valid_from_at:
            state = "not yet valid"
        else:
            state = "active"
        document = manifest.to_json()
        document.pop("format", None)
        release = self.store.current_path()
        return {
            **document,
            "state": state,
            "manifest_sha256": digest,
            "release": release.name if release is not None else None,
        }

    def status(self) -> Mapping[str, Any]:
        active = self._manifest()
        publisher = getattr(self.alerts, "publisher", None)
        mqtt: dict[str, Any] = {
            "broker": f"{self.config.mqtt.host}:{self.config.mqtt.effective_port}"
        }
        if self.sync is not None:
            mqtt["sync"] = {"connected": self.sync.connected, "last_error": self.sync.last_error}
        if publisher is not None:
            mqtt["alerts"] = {
                "connected": publisher.connected,
                "connections": publisher.connections,
                "sent": publisher.sent,
                "acked": publisher.acked,
                "last_error": publisher.last_error,
            }
        pipeline = self._pipeline()
        return {
            "device_id": self.config.device.id,
            "software": __version__,
            "model": embedding_model_id(self.config.embedder.precision),
            "uptime_s": round(time.monotonic() - self.started, 1),
            "watchlist": None
            if active is None
            else {"id": active[0].list_id, "version": active[0].version},
            "queues": dict((pipeline or {}).get("queues") or {}),
            "outbox": self._outbox_stats(),
            "sync": self.sync.snapshot() if self.sync is not None else None,
            "mqtt": mqtt,
            "pipeline": pipeline,
            "health": vars(self.health()),
        }

    def metrics(self) -> MetricsSnapshot:
        active = self._manifest()
        outbox = self._outbox_stats() or {}
        fields: dict[str, Any] = {}
        pipeline = self._pipeline()
        if pipeline is not None:
            fields = pipeline_fields(pipeline)
        connected: dict[str, bool] = {}
        if self.sync is not None:
            connected["sync"] = self.sync.connected
        publisher = getattr(self.alerts, "publisher", None)
        if publisher is not None:
            connected["alerts"] = publisher.connected
        manifest = active[0] if active is not None else None
        return MetricsSnapshot(
            device_id=self.config.device.id,
            model=embedding_model_id(self.config.embedder.precision),
            uptime_s=time.monotonic() - self.started,
            ready=self.health().ready,
            outbox_depth=outbox.get("depth"),
            outbox_bytes=outbox.get("bytes"),
            outbox_oldest_age_s=outbox.get("oldest_age_s"),
            mqtt_connected=connected,
            watchlist_id=manifest.list_id if manifest else None,
            watchlist_version=manifest.version if manifest else None,
            watchlist_entries=manifest.entry_count if manifest else None,
            watchlist_templates=manifest.template_count if manifest else None,
            watchlist_valid_until_s=manifest.valid_until_at.timestamp() if manifest else None,
            sync_counters=dict(vars(self.sync.counters)) if self.sync is not None else {},
            **fields,
        )


class Agent:
    """Builds and runs everything ``edge sync`` does; :meth:`run` blocks until a signal."""

    def __init__(
        self,
        config: Config,
        *,
        state_dir: Path | None = None,
        public_key: Path | None = None,
        agent: bool = False,
        serve_api: bool | None = None,
    ) -> None:
        if not config.sync.lists:
            raise SyncError("sync.lists is empty: name the watchlist(s) this device follows")
        self.config = config
        self.paths = config.paths(state_dir)
        self.state_dir = self.paths.root
        self.agent = agent
        self.serve_api = config.api.enabled if serve_api is None else serve_api
        self.public_key = public_key
        self.notifier = Notifier.from_environment()
        self._stop = threading.Event()
        self._signal: str | None = None
        self.alerts: AlertService | None = None
        self.outbox: Outbox | None = None
        self.audit: AuditLog | None = None
        self.api: ApiServer | None = None

    def _threads_down(self) -> list[str]:
        down = []
        if not self.sync.alive:
            down.append("the watchlist sync thread")
        if self.alerts is not None and not self.alerts.publisher.alive:
            down.append("the MQTT alert publisher")
        if self.api is not None and not self.api.alive:
            down.append("the local API server")
        return down

    def _recognizer_stats(self) -> Mapping[str, Any] | None:
        """``edge run``'s pipeline numbers: the fresher of its last heartbeat (the broker keeps
        it) and the ``run-metrics.json`` it keeps in the state directory (no broker needed), if
        at most three heartbeat periods (plus 5 s) old."""
        max_age = 3 * self.config.mqtt.heartbeat_s + 5
        fresh = [
            (age, stats)
            for stats, age in (
                self.sync.recognizer_stats(max_age),
                read_run_metrics(self.paths.run_metrics, max_age),
            )
            if stats is not None and age is not None
        ]
        return min(fresh, key=lambda found: found[0])[1] if fresh else None

    def _on_installed(self, result: InstallResult) -> None:
        if self.alerts is not None:
            self.alerts.status(
                model_id=embedding_model_id(self.config.embedder.precision),
                watchlist_id=result.list_id,
                watchlist_version=result.version,
            )
        self.notifier.status(f"watchlist {result.list_id} v{result.version}")

    def build(self) -> None:
        config = self.config
        self.state_dir.mkdir(parents=True, exist_ok=True)
        if self.agent:
            self.alerts = AlertService(config, state_dir=self.state_dir)
            self.audit = self.alerts.audit
            self.outbox = self.alerts.outbox
        else:
            self.audit = AuditLog(self.paths.audit, fsync=config.audit.fsync)
            self.outbox = Outbox(self.paths.outbox, config.outbox)
        self.store = open_store(
            config, state_dir=self.state_dir, public_key=self.public_key, audit=self.audit
        )
        self.sync = WatchlistSync(
            config, self.store, self.state_dir, on_installed=self._on_installed
        )
        if self.alerts is not None:
            installed = self.sync.installed
            self.alerts.status(
                model_id=embedding_model_id(config.embedder.precision),
                watchlist_id=installed.list_id if installed else None,
                watchlist_version=installed.version if installed else None,
            )
        self.provider = DeviceProvider(
            config,
            self.store,
            self.state_dir,
            sync=self.sync,
            alerts=self.alerts,
            outbox=self.outbox,
            pipeline=None if self.agent else self._recognizer_stats,
            threads_alive=self._threads_down,
        )

    def start(self) -> None:
        self.build()
        if self.alerts is not None:
            self.alerts.start()
        self.sync.start()
        if self.serve_api:
            token = read_secret(TOKEN_SECRET)
            if token is None or not token.strip():
                log.warning(
                    "no API token (systemd credential %s or $EDGE_%s%s): only /health answers, "
                    "every other endpoint 503",
                    TOKEN_SECRET,
                    TOKEN_SECRET.upper(),
                    "" if token is None else " is empty",
                )
                token = None
            app = create_app(self.provider, token=token, open_health=self.config.api.open_health)
            self.api = ApiServer(app, self.config.api.host, self.config.api.port)
            self.api.start()
        installed = self.sync.installed
        self.notifier.ready(
            f"following {', '.join(self.config.sync.lists)}; installed "
            + (f"{installed.list_id} v{installed.version}" if installed else "nothing")
        )

    def stop(self) -> None:
        self.notifier.stopping()
        if self.api is not None:
            self.api.stop()
        self.sync.stop()
        if self.alerts is not None:
            self.alerts.stop()
        else:
            if self.outbox is not None:
                self.outbox.close()
            if self.audit is not None:
                self.audit.close()

    def request_stop(self) -> None:
        self._stop.set()

    def run(self) -> int:
        """Start, then watch the threads and feed the watchdog until SIGTERM/SIGINT. Exit 1 if
        a thread died (systemd's Restart=on-failure then restarts the service)."""
        restore = stop_on_signals(self._on_signal)
        try:
            self.start()
            code = 0
            while not self._stop.wait(min(1.0, self.notifier.ping_every_s)):
                down = self._threads_down()
                if down:
                    log.error("%s stopped; exiting so the service is restarted", ", ".join(down))
                    code = 1
                    break
                self.notifier.watchdog()
            return code
        finally:
            if hasattr(self, "sync"):
                self.stop()
            restore()

    def _on_signal(self, name: str) -> None:
        self._signal = name
        log.info("%s: stopping", name)
        self._stop.set()
