"""The hub side: publish a watchlist to the fleet, and list the devices.

``publish`` puts every chunk of each transfer on its retained topic (QoS 1, each acknowledged
by the broker), then the announcement, then clears the chunks of the transfers that the old
announcement named and the new one does not. A device therefore never sees an announcement
whose chunks are not on the broker yet.

``devices`` reads what every device keeps retained: ``status`` (online/offline, software, model,
watchlist), ``heartbeat`` (the last one) and ``sync`` (what its watchlist sync is doing).
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho

from edge.clock import format_time, parse_time, utc_now
from edge.config import Config
from edge.errors import SyncError
from edge.fleet.protocol import Announcement, TransferInfo, make_transfer, parse_announcement
from edge.mqtt.oneshot import (
    close,
    connect_and_wait,
    read_retained,
    subscribe_and_wait,
    tool_client,
    wait_published,
)
from edge.mqtt.topics import ListTopics, every_device, parse_device_topic
from edge.system.inputs import load_json
from edge.watchlist.bundle import read_bundle, read_unverified

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PublishResult:
    list_id: str
    version: int
    transfers: tuple[TransferInfo, ...]
    manifest_topic: str
    seconds: float
    previous_version: int | None
    cleared_chunks: int


def _load_bundles(
    bundles: Sequence[Path], public_key: Any | None, chunk_bytes: int
) -> tuple[Announcement, list[bytes]]:
    if not 1 <= len(bundles) <= 2:
        raise SyncError("publish one full bundle, one delta, or one of each")
    infos: list[TransferInfo] = []
    archives: list[bytes] = []
    ids: set[tuple[str, int]] = set()
    for path in bundles:
        if public_key is not None:
            read_bundle(path, public_key)  # signature and every file hash, before anything leaves
        manifest = read_unverified(path)
        ids.add((manifest.list_id, manifest.version))
        info, data = make_transfer(path, chunk_bytes)
        infos.append(info)
        archives.append(data)
    if len(ids) != 1:
        raise SyncError(
            "the bundles are not the same list and version: "
            + ", ".join(f"{lid} v{v}" for lid, v in sorted(ids))
        )
    if len({i.kind for i in infos}) != len(infos):
        raise SyncError("give at most one full bundle and one delta")
    ((list_id, version),) = ids
    announcement = Announcement(
        list_id=list_id,
        version=version,
        published=format_time(utc_now()),
        transfers=tuple(infos),
        publisher=socket.gethostname(),
    )
    return announcement, archives


def publish(
    config: Config,
    bundles: Sequence[Path],
    *,
    chunk_bytes: int | None = None,
    public_key: Any | None = None,
    timeout_s: float = 300.0,
    force: bool = False,
) -> PublishResult:
    """Publish one list version (a full bundle and/or a delta) to the broker."""
    announcement, archives = prepare(bundles, chunk_bytes or config.sync.chunk_bytes, public_key)
    return publish_prepared(config, announcement, archives, timeout_s=timeout_s, force=force)


def prepare(
    bundles: Sequence[Path], chunk_bytes: int, public_key: Any | None = None
) -> tuple[Announcement, list[bytes]]:
    """The announcement and the archives (one per transfer, in order) for ``bundles``."""
    return _load_bundles(bundles, public_key, chunk_bytes)


def publish_prepared(
    config: Config,
    announcement: Announcement,
    archives: Sequence[bytes],
    *,
    timeout_s: float = 300.0,
    force: bool = False,
) -> PublishResult:
    """Chunks first (each acknowledged), then the announcement, then clear stale chunks."""
    started = time.monotonic()
    topics = ListTopics(config.mqtt.topic_prefix, announcement.list_id)
    client = tool_client(config.mqtt, "hub")
    connect_and_wait(client, config.mqtt)
    try:
        previous: Announcement | None = None
        raw = read_retained(client, topics.manifest)
        if raw:
            try:
                previous = parse_announcement(raw, announcement.list_id, 1 << 62)
            except SyncError as exc:
                log.warning("replacing an unreadable announcement: %s", exc)
        if previous is not None and previous.version >= announcement.version and not force:
            raise SyncError(
                f"the broker already announces {announcement.list_id} version "
                f"{previous.version}; devices refuse anything not newer (use --force to "
                "announce this one anyway)"
            )
        pending: list[paho.MQTTMessageInfo] = []
        for info, data in zip(announcement.transfers, archives, strict=True):
            for n in range(len(info.chunks)):
                offset, length = info.chunk_span(n)
                chunk = data[offset : offset + length]
                pending.append(client.publish(topics.chunk(info.sha256, n), chunk, 1, True))
                if len(pending) >= 256:
                    wait_published(pending, timeout_s, "the chunks")
                    pending = []
        wait_published(pending, timeout_s, "the chunks")
        wait_published(
            [client.publish(topics.manifest, announcement.to_bytes(), 1, True)],
            timeout_s,
            "the announcement",
        )
        cleared = 0
        if previous is not None:
            keep = {t.sha256 for t in announcement.transfers}
            stale: list[paho.MQTTMessageInfo] = []
            for old in previous.transfers:
                if old.sha256 in keep:
                    continue
                for n in range(len(old.chunks)):
                    stale.append(client.publish(topics.chunk(old.sha256, n), b"", 1, True))
            wait_published(stale, timeout_s, "the removal of old chunks")
            cleared = len(stale)
    finally:
        close(client)
    return PublishResult(
        list_id=announcement.list_id,
        version=announcement.version,
        transfers=announcement.transfers,
        manifest_topic=topics.manifest,
        seconds=time.monotonic() - started,
        previous_version=previous.version if previous is not None else None,
        cleared_chunks=cleared,
    )


def withdraw(config: Config, list_id: str, timeout_s: float = 60.0) -> int:
    """Clear a list's announcement and chunks from the broker (devices keep what they hold)."""
    topics = ListTopics(config.mqtt.topic_prefix, list_id)
    client = tool_client(config.mqtt, "hub")
    connect_and_wait(client, config.mqtt)
    try:
        raw = read_retained(client, topics.manifest)
        if not raw:
            return 0
        previous = parse_announcement(raw, list_id, 1 << 62)
        cleared = [
            client.publish(topics.chunk(t.sha256, n), b"", 1, True)
            for t in previous.transfers
            for n in range(len(t.chunks))
        ]
        cleared.append(client.publish(topics.manifest, b"", 1, True))
        wait_published(cleared, timeout_s, "the removal")
        return len(cleared)
    finally:
        close(client)


# --- devices -------------------------------------------------------------------------------------


DEVICE_ROW_KINDS = ("status", "heartbeat", "sync")  # what every device keeps retained


@dataclass
class DeviceRow:
    device_id: str
    status: dict[str, Any] | None = None
    heartbeat: dict[str, Any] | None = None
    sync: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def state(self) -> str:
        if self.status is None:
            return "unknown"
        return str(self.status.get("state", "unknown"))

    @property
    def watchlist(self) -> str:
        wl = (self.status or {}).get("watchlist")
        if isinstance(wl, dict) and wl.get("id"):
            return f"{wl['id']} v{wl.get('version')}"
        installed = (self.sync or {}).get("installed")
        if isinstance(installed, dict):
            return f"{installed.get('id')} v{installed.get('version')} (sync)"
        return "-"

    @property
    def sync_state(self) -> str:
        if self.sync is None:
            return "-"
        parts = []
        for lid, entry in sorted((self.sync.get("lists") or {}).items()):
            if not isinstance(entry, dict):
                continue
            text = f"{lid}: {entry.get('state')}"
            transfer = entry.get("transfer")
            if isinstance(transfer, dict):
                text += f" {transfer.get('have')}/{transfer.get('chunks')}"
            parts.append(text)
        return ", ".join(parts) or "-"

    def heartbeat_age_s(self, now: datetime | None = None) -> float | None:
        when = (self.heartbeat or {}).get("time")
        if not isinstance(when, str):
            return None
        try:
            moment = parse_time(when)
        except Exception:
            return None
        return max(0.0, ((now or utc_now()) - moment).total_seconds())

    def as_dict(self) -> dict[str, Any]:
        return {
            "device_id": self.device_id,
            "state": self.state,
            "status": self.status,
            "heartbeat": self.heartbeat,
            "heartbeat_age_s": self.heartbeat_age_s(),
            "sync": self.sync,
        }


def collect_devices(config: Config, wait_s: float = 2.0, quiet_s: float = 0.5) -> list[DeviceRow]:
    """Every device with a retained status, heartbeat or sync report, sorted by id.

    Waits until no retained message has arrived for ``quiet_s`` (at most ``wait_s``)."""
    prefix = config.mqtt.topic_prefix
    rows: dict[str, DeviceRow] = {}
    lock = threading.Lock()
    last = [time.monotonic()]

    def on_message(client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        parsed = parse_device_topic(message.topic, prefix)
        if parsed is None or parsed[1] not in DEVICE_ROW_KINDS or not message.payload:
            return
        device_id, kind = parsed
        try:
            document = load_json(bytes(message.payload))
        except (UnicodeDecodeError, ValueError):
            log.warning("ignoring a non-JSON message on %s", message.topic)
            return
        if not isinstance(document, dict):
            return
        with lock:
            row = rows.setdefault(device_id, DeviceRow(device_id))
            setattr(row, kind, document)
            last[0] = time.monotonic()

    client = tool_client(config.mqtt, "hub")
    client.on_message = on_message
    connect_and_wait(client, config.mqtt)
    try:
        subscribe_and_wait(client, [(every_device(prefix, kind), 1) for kind in DEVICE_ROW_KINDS])
        started = last[0] = time.monotonic()
        while True:
            now = time.monotonic()
            if now - started >= wait_s or now - last[0] >= quiet_s:
                break
            time.sleep(0.05)
    finally:
        close(client)
    with lock:
        return [rows[k] for k in sorted(rows)]
