"""Fetching one transfer's chunks: the window of retained chunk topics asked for, their timeouts
and bad copies, and the sparse file the verified chunks go into.

The device subscribes to the retained topic of each chunk it lacks, at most ``sync.window`` at a
time, and unsubscribes when the chunk arrived and matched its sha256 (or did not arrive within
``sync.chunk_timeout_s``: it is asked for again, up to ``sync.chunk_retries`` times). All of it
runs on the sync's MQTT thread (:mod:`edge.fleet.sync`).
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import MQTTErrorCode

from edge.config.sync import SyncConfig
from edge.fleet.protocol import Announcement, TransferInfo
from edge.fleet.transfer import PartialTransfer
from edge.mqtt.topics import ListTopics

# The name these lines always had: operators and their log filters know it.
log = logging.getLogger("edge.fleet.sync")


@dataclass
class ListState:
    """Where one followed list stands (reported on ``<device>/sync`` and the local API)."""

    state: str = "not announced"
    detail: str = ""
    announcement: Announcement | None = None
    refused: set[str] = field(default_factory=set)
    retry_at: dict[str, float] = field(default_factory=dict)


@dataclass
class SyncCounters:
    chunks_received: int = 0
    chunks_refused: int = 0
    chunks_duplicate: int = 0
    bytes_received: int = 0
    chunk_timeouts: int = 0
    transfers_completed: int = 0
    transfers_failed: int = 0
    installs: int = 0
    refusals: int = 0
    connections: int = 0


@dataclass
class Fetch:
    list_id: str
    announcement: Announcement
    partial: PartialTransfer
    replace_list: bool
    requested: dict[int, float] = field(default_factory=dict)  # chunk -> when requested
    todo: deque[int] = field(default_factory=deque)  # chunks to request, in order
    misses: dict[int, int] = field(default_factory=dict)  # chunk -> timeouts and bad copies
    started: float = field(default_factory=time.monotonic)
    resumed_with: int = 0

    def forget_requests(self) -> None:
        """The subscriptions are gone (new session): ask for those chunks again first."""
        self.todo.extendleft(sorted(self.requested, reverse=True))
        self.requested.clear()


@dataclass(frozen=True)
class ChunkResult:
    """What one chunk message did: ``stored`` it, or made the transfer fail (``failed``: why)."""

    stored: bool = False
    failed: str | None = None


class Fetcher:
    """The one transfer being fetched (:attr:`current`), over ``client``'s subscriptions."""

    def __init__(
        self,
        client: paho.Client,
        prefix: str,
        sync: SyncConfig,
        counters: SyncCounters,
        work_dir: Path,
        connected: Callable[[], bool],
    ) -> None:
        self.client = client
        self._connected = connected
        self.prefix = prefix
        self.sync = sync
        self.counters = counters
        self.work_dir = work_dir
        self.current: Fetch | None = None

    def start(
        self, lid: str, ann: Announcement, transfer: TransferInfo, replace_list: bool
    ) -> Fetch:
        """Open (or resume) the transfer's partial file and plan its missing chunks."""
        directory = self.work_dir / lid
        partial = PartialTransfer(directory, transfer)
        # Anything else of this list is an older, abandoned transfer.
        if directory.is_dir():
            for leftover in directory.iterdir():
                if not leftover.name.startswith(transfer.sha256):
                    if leftover.is_dir():
                        shutil.rmtree(leftover, ignore_errors=True)
                    else:
                        leftover.unlink(missing_ok=True)
        shutil.rmtree(partial.unpacked, ignore_errors=True)
        have = partial.open()
        fetch = Fetch(lid, ann, partial, replace_list, resumed_with=have)
        fetch.todo.extend(partial.missing())
        self.current = fetch
        total = len(transfer.chunks)
        if have:
            log.info(
                "list %s v%d: resuming the %s transfer %s (%d of %d chunks already here)",
                lid,
                ann.version,
                transfer.kind,
                transfer.sha256[:12],
                have,
                total,
            )
        else:
            log.info(
                "list %s v%d: fetching the %s transfer %s (%d bytes in %d chunks)",
                lid,
                ann.version,
                transfer.kind,
                transfer.sha256[:12],
                transfer.size,
                total,
            )
        return fetch

    def take(self) -> Fetch:
        """The current transfer, no longer fetched (complete, failed or abandoned)."""
        fetch = self.current
        assert fetch is not None
        self.unsubscribe_all(fetch)
        self.current = None
        return fetch

    def unsubscribe_all(self, fetch: Fetch) -> None:
        if fetch.requested and self._connected():
            topics = ListTopics(self.prefix, fetch.list_id)
            self.client.unsubscribe(
                [topics.chunk(fetch.partial.info.sha256, n) for n in fetch.requested]
            )
        fetch.requested.clear()

    def on_chunk(self, lid: str, transfer: str, n: int, data: bytes) -> ChunkResult:
        fetch = self.current
        if fetch is None or fetch.list_id != lid or fetch.partial.info.sha256 != transfer:
            return ChunkResult()  # a late copy for an abandoned transfer
        info = fetch.partial.info
        if not data or n >= len(info.chunks):
            return ChunkResult()  # cleared by the hub, or nonsense: the timeout asks again
        if n in fetch.partial.have:
            self.counters.chunks_duplicate += 1
            return ChunkResult()
        topic = ListTopics(self.prefix, lid).chunk(transfer, n)
        if n in fetch.requested:
            del fetch.requested[n]
            self.client.unsubscribe(topic)
        if not fetch.partial.put(n, data):
            self.counters.chunks_refused += 1
            fetch.todo.appendleft(n)
            misses = fetch.misses[n] = fetch.misses.get(n, 0) + 1
            log.warning(
                "list %s: chunk %d of transfer %s refused: %d bytes with sha256 %s..., the "
                "announcement says %s... (attempt %d of %d)",
                lid,
                n,
                transfer[:12],
                len(data),
                hashlib.sha256(data).hexdigest()[:12],
                info.chunks[n][:12],
                misses,
                self.sync.chunk_retries,
            )
            if misses >= self.sync.chunk_retries:
                return ChunkResult(failed=f"chunk {n} failed its sha256 check {misses} times")
            return ChunkResult()
        self.counters.chunks_received += 1
        self.counters.bytes_received += len(data)
        fetch.misses.pop(n, None)
        return ChunkResult(stored=True)

    def request(self, fetch: Fetch, now: float) -> str | None:
        """Ask again for chunks that timed out, then for more up to the window; returns why the
        transfer failed (a chunk asked for too often), or None."""
        sync = self.sync
        topics = ListTopics(self.prefix, fetch.list_id)
        sha = fetch.partial.info.sha256
        for n, asked in list(fetch.requested.items()):
            if now - asked < sync.chunk_timeout_s:
                continue
            del fetch.requested[n]
            self.client.unsubscribe(topics.chunk(sha, n))
            self.counters.chunk_timeouts += 1
            fetch.todo.append(n)
            misses = fetch.misses[n] = fetch.misses.get(n, 0) + 1
            log.warning(
                "list %s: chunk %d of transfer %s did not arrive within %.0fs (attempt %d of %d)",
                fetch.list_id,
                n,
                sha[:12],
                sync.chunk_timeout_s,
                misses,
                sync.chunk_retries,
            )
            if misses >= sync.chunk_retries:
                return f"chunk {n} did not arrive ({misses} requests)"
        room = sync.window - len(fetch.requested)
        if room <= 0:
            return None
        wanted: list[int] = []
        while fetch.todo and len(wanted) < room:
            n = fetch.todo.popleft()
            if n not in fetch.partial.have and n not in fetch.requested and n not in wanted:
                wanted.append(n)
        if not wanted:
            return None
        result, _ = self.client.subscribe([(topics.chunk(sha, n), 1) for n in wanted])
        if result != MQTTErrorCode.MQTT_ERR_SUCCESS:
            fetch.todo.extendleft(reversed(wanted))
            return None  # not connected after all: loop() notices
        for n in wanted:
            fetch.requested[n] = now
        return None
