"""The device side of watchlist sync: follow lists, fetch chunks, verify, install, report.

:class:`WatchlistSync` is an :class:`edge.mqtt.service.MqttService`: one thread drives the MQTT
client, so every paho callback runs on it. It takes the hub's (retained) announcements of the
lists in ``sync.lists``, plans which transfer to fetch (:func:`edge.fleet.transfer.plan`), and
hands the work to two parts:

- :mod:`edge.fleet.fetch`: a transfer is fetched a window of chunks at a time, over retained
  chunk topics, into a sparse ``<sha256>.part`` file under ``<state_dir>/<sync.subdir>/``, so a
  transfer interrupted by a lost link, a broker restart or a device restart resumes with the
  chunks it lacks (on start each chunk already in the file is checked against its sha256 again).
- :mod:`edge.fleet.installer`: when every chunk is in, a second thread checks, unpacks and
  installs it (or refuses it and keeps the old list).

The device then reports the new version: through ``on_installed`` (``edge sync`` republishes the
device status) and on its retained ``P/<device>/sync`` topic.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.properties import Properties

from edge import __version__
from edge.clock import format_time, parse_time, utc_now
from edge.config import Config
from edge.errors import SyncError, TimeFormatError, WatchlistError
from edge.fleet.fetch import Fetcher, ListState, SyncCounters
from edge.fleet.installer import Installer
from edge.fleet.protocol import Announcement, TransferInfo, parse_announcement
from edge.fleet.transfer import Installed, plan
from edge.mqtt.service import MqttService
from edge.mqtt.topics import DeviceTopics, ListTopics, parse_chunk_topic
from edge.system.inputs import load_json
from edge.watchlist.install import InstallResult, WatchlistStore

log = logging.getLogger(__name__)

SETTLE_S = 0.3  # act on announcements once none has arrived for this long (retained burst)
REPLAN_S = 5.0  # look at the store again this often (another installer, retry timers)
REPORT_MIN_S = 1.0  # progress reports at most this often
_LOOP_S = 0.02


# --- the sync client ------------------------------------------------------------------------------


class WatchlistSync(MqttService):
    """Keeps one MQTT connection (client id ``<mqtt client id>-sync``, clean session) and the
    device's watchlist in step with the hub's announcements for ``config.sync.lists``."""

    def __init__(
        self,
        config: Config,
        store: WatchlistStore,
        state_dir: Path,
        *,
        password: str | None = None,
        on_installed: Callable[[InstallResult], None] | None = None,
    ) -> None:
        super().__init__(
            config.mqtt,
            (config.mqtt.client_id or f"edge-{config.device.id}") + "-sync",
            persistent_session=False,
            thread_name="watchlist-sync",
            password=password,
            name="watchlist sync",
        )
        self.config = config
        self.store = store
        self.lists = list(config.sync.lists)
        self.prefix = config.mqtt.topic_prefix
        self.device_id = config.device.id
        self.on_installed = on_installed
        self.topics = {lid: ListTopics(self.prefix, lid) for lid in self.lists}
        device_topics = DeviceTopics(self.prefix, self.device_id)
        self.report_topic = device_topics.sync
        # The recognizer's (retained) heartbeat: its fps, latencies and queues for the local API.
        self.heartbeat_topic = device_topics.heartbeat
        self.heartbeat: dict[str, Any] | None = None
        self.counters = SyncCounters()
        self.started_at = time.monotonic()
        self._fetcher = Fetcher(
            self.client,
            self.prefix,
            config.sync,
            self.counters,
            config.paths(state_dir).sync,
            lambda: self.connected,
        )
        self._states = {lid: ListState() for lid in self.lists}
        self._pending: dict[str, bytes] = {}
        self._last_manifest_at = 0.0
        self._installer = Installer(store, config.sync, self.counters)
        self._replan = True
        self._next_plan = 0.0
        self._report_dirty = True
        self._last_report = 0.0
        self._last_report_body: str | None = None
        self._installed: Installed | None = None
        self.report: dict[str, Any] = {}
        self._refresh_installed()
        self._update_report()

    # --- public ----------------------------------------------------------------------------

    def stop(self, timeout_s: float = 10.0) -> None:
        self.stop_thread(timeout_s)
        self._installer.shutdown()
        if self._fetcher.current is not None:
            self._fetcher.current.partial.close()

    @property
    def installed(self) -> Installed | None:
        return self._installed

    # --- the loop --------------------------------------------------------------------------

    def loop_timeout(self) -> float:
        return _LOOP_S

    def on_lost(self) -> None:
        if self._fetcher.current is not None:
            self._fetcher.current.forget_requests()  # subscriptions died with the (clean) session

    def on_connected(
        self, client: paho.Client, session_present: bool, properties: Properties | None
    ) -> None:
        self.counters.connections += 1
        if self._fetcher.current is not None:
            self._fetcher.current.forget_requests()
        client.subscribe(
            [(t.manifest, 1) for t in self.topics.values()] + [(self.heartbeat_topic, 0)]
        )
        self._last_manifest_at = time.monotonic()
        self._report_dirty = True
        self._last_report_body = None  # republish: the broker may have lost it
        log.info(
            "watchlist sync connected to %s as %s; following %s",
            self.broker,
            self.client_id,
            ", ".join(self.lists) or "no lists",
        )

    def on_message(self, message: paho.MQTTMessage) -> None:
        topic = message.topic
        if topic == self.heartbeat_topic:
            self._on_heartbeat(bytes(message.payload))
            return
        for lid, topics in self.topics.items():
            if topic == topics.manifest:
                self._pending[lid] = bytes(message.payload)
                self._last_manifest_at = time.monotonic()
                return
        parsed = parse_chunk_topic(topic, self.prefix)
        if parsed is not None:
            self._on_chunk(*parsed, bytes(message.payload))

    def _on_heartbeat(self, payload: bytes) -> None:
        try:
            document = load_json(payload) if payload else None
        except (UnicodeDecodeError, ValueError):
            return
        if isinstance(document, dict):
            self.heartbeat = document

    def recognizer_stats(self, max_age_s: float) -> tuple[dict[str, Any] | None, float | None]:
        """The ``pipeline`` part of the device's last heartbeat if it is at most ``max_age_s``
        old (by its own time stamp), and that age; (None, age or None) otherwise."""
        heartbeat = self.heartbeat
        if heartbeat is None:
            return None, None
        try:
            age = (utc_now() - parse_time(str(heartbeat.get("time")))).total_seconds()
        except TimeFormatError:
            return None, None
        pipeline = heartbeat.get("pipeline")
        if age > max_age_s or not isinstance(pipeline, dict):
            return None, age
        return pipeline, age

    # --- announcements -----------------------------------------------------------------------

    def _take_announcements(self) -> None:
        pending, self._pending = self._pending, {}
        for lid, raw in pending.items():
            state = self._states[lid]
            if not raw:
                log.info("list %s withdrawn by the hub (an empty announcement); keeping ours", lid)
                state.announcement = None
                state.state, state.detail = "withdrawn", "the hub withdrew the announcement"
                current = self._fetcher.current
                if current is not None and current.list_id == lid:
                    self._cancel_fetch("the list was withdrawn")
                continue
            try:
                ann = parse_announcement(raw, lid, self.config.sync.max_bundle_bytes)
            except SyncError as exc:
                log.warning("%s", exc)
                state.state, state.detail = "refused", str(exc)
                self.counters.refusals += 1
                continue
            if state.announcement is None or state.announcement != ann:
                log.info(
                    "list %s: hub announces version %d (%s)",
                    lid,
                    ann.version,
                    ", ".join(f"{t.kind} {t.size} bytes" for t in ann.transfers),
                )
            state.announcement = ann
            fetch = self._fetcher.current
            if (
                fetch is not None
                and fetch.list_id == lid
                and fetch.partial.info.sha256 not in {t.sha256 for t in ann.transfers}
            ):
                self._cancel_fetch(f"superseded by version {ann.version}")
        self._replan = True
        self._report_dirty = True

    def _refresh_installed(self) -> None:
        try:
            active = self.store.active_manifest()
        except WatchlistError as exc:
            log.error("the installed watchlist is unusable: %s", exc)
            active = None
        self._installed = Installed.of(active[0]) if active is not None else None

    def _plan_next(self) -> None:
        """Pick the next transfer to fetch: the most preferred list that needs one."""
        self._refresh_installed()
        now = time.monotonic()
        for lid in self.lists:
            state = self._states[lid]
            ann = state.announcement
            if ann is None:
                continue
            decision = plan(
                ann,
                self._installed,
                self.lists,
                self.store.public_key,
                self.store.model,
                refused=frozenset(state.refused),
            )
            if decision.action == "skip":
                if (state.state, state.detail) != (decision.state, decision.detail):
                    if decision.state == "refused":
                        log.error("list %s v%d: %s", lid, ann.version, decision.detail)
                        self.counters.refusals += 1
                    state.state, state.detail = decision.state, decision.detail
                    self._report_dirty = True
                continue
            transfer = decision.transfer
            assert transfer is not None
            retry_at = state.retry_at.get(transfer.sha256, 0.0)
            if now < retry_at:
                continue
            self._start_fetch(lid, ann, transfer, decision.replace_list)
            return

    def _start_fetch(
        self, lid: str, ann: Announcement, transfer: TransferInfo, replace_list: bool
    ) -> None:
        fetch = self._fetcher.start(lid, ann, transfer, replace_list)
        state = self._states[lid]
        state.state = "fetching"
        state.detail = f"{transfer.kind} v{ann.version}"
        self._report_dirty = True
        if fetch.partial.complete:
            self._begin_install()

    def _cancel_fetch(self, why: str) -> None:
        fetch = self._fetcher.current
        if fetch is None:
            return
        log.info(
            "list %s: abandoning transfer %s: %s",
            fetch.list_id,
            fetch.partial.info.sha256[:12],
            why,
        )
        self._fetcher.take()
        fetch.partial.discard()
        self._replan = True

    def _fail_fetch(self, why: str) -> None:
        fetch = self._fetcher.take()
        state = self._states[fetch.list_id]
        retry = self.config.sync.retry_s
        log.error(
            "list %s v%d: transfer %s failed: %s; the installed list stays active, retrying in "
            "%.0fs",
            fetch.list_id,
            fetch.announcement.version,
            fetch.partial.info.sha256[:12],
            why,
            retry,
        )
        state.state, state.detail = "failed", why
        state.retry_at[fetch.partial.info.sha256] = time.monotonic() + retry
        self.counters.transfers_failed += 1
        fetch.partial.close()
        self._report_dirty = True
        self._replan = True

    def _on_chunk(self, lid: str, transfer: str, n: int, data: bytes) -> None:
        result = self._fetcher.on_chunk(lid, transfer, n, data)
        if result.failed is not None:
            self._fail_fetch(result.failed)
            return
        if result.stored:
            self._report_dirty = True
            fetch = self._fetcher.current
            if fetch is not None and fetch.partial.complete:
                self._begin_install()

    # --- install ---------------------------------------------------------------------------------

    def _begin_install(self) -> None:
        fetch = self._fetcher.take()
        self.counters.transfers_completed += 1
        state = self._states[fetch.list_id]
        state.state = "installing"
        state.detail = f"{fetch.partial.info.kind} v{fetch.announcement.version}"
        self._report_dirty = True
        self._installer.begin(fetch)

    def _install_finished(self) -> None:
        fetch = self._installer.fetch
        assert fetch is not None
        result = self._installer.finish(self._states[fetch.list_id])
        if result is not None:
            self._refresh_installed()
            if self.on_installed is not None:
                try:
                    self.on_installed(result)
                except Exception:
                    log.exception("on_installed callback failed")
        self._replan = True
        self._report_dirty = True

    # --- the periodic part ---------------------------------------------------------------------

    def tick(self) -> None:
        now = time.monotonic()
        if not self.connected:
            return
        if self._pending and now - self._last_manifest_at >= SETTLE_S:
            self._take_announcements()
        if self._installer.done():
            self._install_finished()
        busy = self._installer.busy or self._fetcher.current is not None
        if not busy and (self._replan or now >= self._next_plan) and not self._pending:
            self._replan = False
            self._next_plan = now + REPLAN_S
            self._plan_next()
        if self._fetcher.current is not None:
            failed = self._fetcher.request(self._fetcher.current, now)
            if failed is not None:
                self._fail_fetch(failed)
        if self._report_dirty and now - self._last_report >= REPORT_MIN_S:
            self._publish_report(now)

    def _update_report(self) -> None:
        lists: dict[str, Any] = {}
        for lid, state in self._states.items():
            entry: dict[str, Any] = {
                "state": state.state,
                "detail": state.detail,
                "announced": state.announcement.version if state.announcement else None,
            }
            fetch = self._fetcher.current or self._installer.fetch
            if fetch is not None and fetch.list_id == lid:
                entry["transfer"] = {
                    "sha256": fetch.partial.info.sha256,
                    "kind": fetch.partial.info.kind,
                    "bytes": fetch.partial.info.size,
                    "chunks": len(fetch.partial.info.chunks),
                    "have": len(fetch.partial.have),
                }
            lists[lid] = entry
        installed = self._installed
        self.report = {
            "device_id": self.device_id,
            "software": __version__,
            "installed": None
            if installed is None
            else {"id": installed.list_id, "version": installed.version},
            "lists": lists,
            "counters": dict(vars(self.counters)),
        }

    def _publish_report(self, now: float) -> None:
        self._report_dirty = False
        self._last_report = now
        self._update_report()
        body = json.dumps(self.report, sort_keys=True)
        if body == self._last_report_body:
            return
        self._last_report_body = body
        document = dict(self.report, time=format_time(utc_now()))
        payload = json.dumps(document, sort_keys=True, separators=(",", ":")).encode("utf-8")
        self.client.publish(self.report_topic, payload, qos=1, retain=True)

    def snapshot(self) -> dict[str, Any]:
        """The last report (for the local API), with the connection state."""
        report = dict(self.report)
        report["connected"] = self.connected
        report["last_error"] = self.last_error
        report["time"] = format_time(utc_now())
        return report
