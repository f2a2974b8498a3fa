"""Durable outbox: alerts wait here, in SQLite (WAL, synchronous=FULL), until they are delivered.

An alert is committed before it is ever published and deleted only when its delivery is
acknowledged: by dispatch, which says it stored the alert (``alerts.require_dispatch_ack``, the
default), or by the broker's PUBACK of the very message that carried it. A crash, a reboot or a
dead link at any point leads at worst to the alert being sent again (receivers deduplicate on
``alert_id``), never to its loss.

Each row keeps the ``device_id`` of its alert: the device id the alert was made under, which
the publisher sends it as (its topics), whatever ``device.id`` says now.

Bounds (count and bytes) are enforced on enqueue by the configured policy; every alert evicted
or refused is written in full (less its crop) to the audit log. If the database cannot be written
(disk full), alerts are held in memory, still sent, and stored once there is room again.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from edge import audit as audit_kinds
from edge.alerts.model import Alert, JsonObject, alert_summary
from edge.audit import AuditLog
from edge.config.alerts import OutboxConfig
from edge.errors import AuditError, OutboxError

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    alert_id TEXT NOT NULL UNIQUE,
    payload BLOB NOT NULL,
    size INTEGER NOT NULL,
    enqueued_at REAL NOT NULL,
    device_id TEXT
)
"""
# Outboxes written before rows kept their device id get the column, filled from the payloads.
_ADD_DEVICE_ID = (
    "ALTER TABLE outbox ADD COLUMN device_id TEXT",
    "UPDATE outbox SET device_id = json_extract(CAST(payload AS TEXT), '$.device_id') "
    "WHERE device_id IS NULL",
)
_DEVICE_INDEX = "CREATE INDEX IF NOT EXISTS outbox_device ON outbox (device_id)"


@dataclass(frozen=True)
class OutboxItem:
    """One unacknowledged alert. ``seq`` is 0 for an alert held in memory (not yet stored)."""

    seq: int
    alert_id: str
    payload: bytes
    device_id: str


@dataclass(frozen=True)
class OutboxStats:
    depth: int
    bytes: int
    oldest_enqueued_at: float | None
    held_in_memory: int

    @property
    def total(self) -> int:
        return self.depth + self.held_in_memory

    def as_dict(self) -> dict[str, float | None]:
        age = None if self.oldest_enqueued_at is None else time.time() - self.oldest_enqueued_at
        return {
            "depth": self.depth,
            "bytes": self.bytes,
            "oldest_age_s": None if age is None else round(age, 3),
            "held_in_memory": self.held_in_memory,
        }


_ITEM = "seq, alert_id, payload, device_id"


def _item(row: tuple[int, str, bytes, str]) -> OutboxItem:
    seq, alert_id, payload, device_id = row
    return OutboxItem(seq, alert_id, bytes(payload), device_id)


def _is_disk_full(exc: BaseException) -> bool:
    if isinstance(exc, sqlite3.OperationalError | sqlite3.DatabaseError):
        code = getattr(exc, "sqlite_errorcode", None)
        return code == sqlite3.SQLITE_FULL or "full" in str(exc).lower()
    return isinstance(exc, OSError) and exc.errno == 28  # ENOSPC


class Outbox:
    """The durable queue between the recognition pipeline and the MQTT publisher.

    Thread-safe; several processes may share the file (WAL). ``on_enqueue`` is called after each
    enqueue so a publisher can wake up at once.
    """

    def __init__(
        self,
        path: Path,
        config: OutboxConfig | None = None,
        *,
        audit: AuditLog | None = None,
        on_enqueue: Callable[[], None] | None = None,
    ) -> None:
        self.path = path
        self.config = config or OutboxConfig.model_validate({})
        self.audit = audit
        self.on_enqueue = on_enqueue
        self._lock = threading.RLock()
        self._memory: OrderedDict[str, OutboxItem] = OrderedDict()
        self._memory_bytes = 0
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(
                path, timeout=10.0, isolation_level=None, check_same_thread=False
            )
            mode = self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise OutboxError(f"outbox {path}: SQLite refused WAL mode (got {mode})")
            # FULL: a commit survives power loss, not only a process crash.
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute(_SCHEMA)
            self._add_device_ids()
        except (sqlite3.Error, OSError) as exc:
            raise OutboxError(
                f"cannot open outbox {path}: {exc} "
                "(another directory: --state-dir or $EDGE_STATE_DIR)"
            ) from exc

    def _add_device_ids(self) -> None:
        db = self._db
        db.execute("BEGIN IMMEDIATE")  # another process may be doing the same
        try:
            columns = {row[1] for row in db.execute("PRAGMA table_info(outbox)")}
            if "device_id" not in columns:
                for statement in _ADD_DEVICE_ID:
                    db.execute(statement)
            db.execute(_DEVICE_INDEX)
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise

    # --- lifecycle -----------------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            if self._memory:
                self._store_held()
            if self._memory:
                log.error(
                    "outbox %s: closing with %d alerts that could not be stored (disk full); "
                    "they are in the audit log",
                    self.path,
                    len(self._memory),
                )
            self._db.close()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- producer side -------------------------------------------------------------------------

    def enqueue(self, alert: Alert) -> str:
        """Commit ``alert`` (valid: it was checked when it was made), audit the hit; returns its
        ``alert_id``. Raises :class:`edge.errors.OutboxError` if it can be neither stored nor
        held in memory.
        """
        item = OutboxItem(0, alert.alert_id, alert.encode(), alert.device_id)
        alert_id = item.alert_id
        summary = alert.summary()
        with self._lock:
            evicted: list[tuple[str, bytes]] = []
            try:
                evicted = self._insert(item)
            except OutboxError as exc:
                self._audit([(audit_kinds.HIT_REJECTED, {"alert": summary, "reason": str(exc)})])
                raise
            except (sqlite3.Error, OSError) as exc:
                if not _is_disk_full(exc):
                    raise OutboxError(
                        f"outbox {self.path}: cannot store alert {alert_id}: {exc}"
                    ) from exc
                self._hold_in_memory(item, summary, exc)
            else:
                self._audit(
                    [(audit_kinds.EVICT, self._eviction_record(i, p)) for i, p in evicted]
                    + [(audit_kinds.HIT, {"alert": summary, "stored": "disk"})]
                )
                if self._memory:
                    self._store_held()
        if self.on_enqueue is not None:
            self.on_enqueue()
        return alert_id

    def _insert(self, item: OutboxItem) -> list[tuple[str, bytes]]:
        alert_id, payload = item.alert_id, item.payload
        size = len(payload)
        if size > self.config.max_bytes:
            raise OutboxError(
                f"alert {alert_id} is {size} bytes, over outbox.max_bytes {self.config.max_bytes}"
            )
        evicted: list[tuple[str, bytes]] = []
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            count, total = db.execute(
                "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM outbox"
            ).fetchone()
            if count + 1 > self.config.max_alerts or total + size > self.config.max_bytes:
                if self.config.when_full == "reject_new":
                    raise OutboxError(
                        f"outbox full ({count} alerts, {total} bytes; when_full=reject_new): "
                        f"alert {alert_id} refused"
                    )
                max_alerts, max_bytes = self.config.max_alerts, self.config.max_bytes
                for old_id, old_payload, old_size in db.execute(
                    "SELECT alert_id, payload, size FROM outbox ORDER BY seq"
                ):
                    if count + 1 <= max_alerts and total + size <= max_bytes:
                        break
                    evicted.append((old_id, bytes(old_payload)))
                    count -= 1
                    total -= old_size
                db.executemany("DELETE FROM outbox WHERE alert_id = ?", [(i,) for i, _ in evicted])
            db.execute(
                "INSERT OR IGNORE INTO outbox (alert_id, payload, size, enqueued_at, device_id) "
                "VALUES (?, ?, ?, ?, ?)",
                (alert_id, payload, size, time.time(), item.device_id),
            )
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        if evicted:
            log.warning(
                "outbox %s full: evicted the %d oldest unacknowledged alerts (kept in the audit "
                "log) to store alert %s",
                self.path,
                len(evicted),
                alert_id,
            )
        return evicted

    def _eviction_record(self, alert_id: str, payload: bytes) -> JsonObject:
        summary: JsonObject
        try:
            summary = alert_summary(json.loads(payload))
        except ValueError:
            summary = {"alert_id": alert_id}
        return {"alert": summary, "reason": "outbox full (when_full=drop_oldest)"}

    def _hold_in_memory(self, item: OutboxItem, summary: JsonObject, exc: BaseException) -> None:
        alert_id = item.alert_id
        if len(self._memory) >= self.config.memory_fallback:
            self._audit([(audit_kinds.HIT_REJECTED, {"alert": summary, "reason": str(exc)})])
            raise OutboxError(
                f"outbox {self.path}: disk full and {len(self._memory)} alerts already held in "
                f"memory: alert {alert_id} not queued"
            ) from exc
        if alert_id not in self._memory:
            self._memory[alert_id] = item
            self._memory_bytes += len(item.payload)
        log.error(
            "outbox %s: cannot store alert %s (%s); holding it in memory (%d held) and sending "
            "it anyway: free disk space",
            self.path,
            alert_id,
            exc,
            len(self._memory),
        )
        self._audit([(audit_kinds.HIT_HELD_IN_MEMORY, {"alert": summary, "reason": str(exc)})])

    def _store_held(self) -> None:
        """Try to move alerts held in memory into the database (lock held)."""
        moved: list[str] = []
        for alert_id, item in list(self._memory.items()):
            try:
                self._insert(item)
            except (sqlite3.Error, OSError, OutboxError) as exc:
                log.debug("outbox %s: still cannot store held alerts: %s", self.path, exc)
                break
            del self._memory[alert_id]
            self._memory_bytes -= len(item.payload)
            moved.append(alert_id)
        if moved:
            log.info("outbox %s: stored %d alerts that were held in memory", self.path, len(moved))
            self._audit([(audit_kinds.STORED, {"alert_ids": moved})])

    def retry_held(self) -> None:
        """Store alerts held in memory if the disk has room again (the publisher calls this)."""
        with self._lock:
            if self._memory:
                self._store_held()

    def _audit(self, records: Sequence[tuple[str, Mapping[str, object]]]) -> None:
        if self.audit is None or not records:
            return
        try:
            self.audit.append_many(records)
        except AuditError as exc:
            # The outbox row is the alert's safety; a failing audit log must not stop delivery.
            log.error("%s (records: %s)", exc, ", ".join(kind for kind, _ in records))

    # --- consumer side -------------------------------------------------------------------------

    def fetch(self, after_seq: int = 0, limit: int = 100) -> list[OutboxItem]:
        """Stored alerts with ``seq > after_seq``, oldest first."""
        with self._lock:
            try:
                rows = self._db.execute(
                    f"SELECT {_ITEM} FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?",
                    (after_seq, limit),
                ).fetchall()
            except sqlite3.Error as exc:
                raise OutboxError(f"cannot read outbox {self.path}: {exc}") from exc
        return [_item(row) for row in rows]

    def get(self, alert_ids: Iterable[str]) -> list[OutboxItem]:
        """These alerts if still queued (stored ones oldest first, then those held in memory)."""
        ids = list(dict.fromkeys(alert_ids))
        if not ids:
            return []
        with self._lock:
            rows: list[tuple[int, str, bytes, str]] = []
            try:
                for start in range(0, len(ids), 500):
                    chunk = ids[start : start + 500]
                    rows += self._db.execute(
                        f"SELECT {_ITEM} FROM outbox WHERE alert_id IN "
                        f"({','.join('?' * len(chunk))})",
                        chunk,
                    ).fetchall()
            except sqlite3.Error as exc:
                raise OutboxError(f"cannot read outbox {self.path}: {exc}") from exc
            held = [self._memory[i] for i in ids if i in self._memory]
        stored = [_item(row) for row in rows]
        return sorted(stored, key=lambda item: item.seq) + held

    def held(self) -> list[OutboxItem]:
        """Alerts held in memory because they could not be stored, oldest first."""
        with self._lock:
            return list(self._memory.values())

    def ack(self, alert_ids: Iterable[str]) -> int:
        """Delete acknowledged alerts (one transaction); returns how many were still queued."""
        ids = list(dict.fromkeys(alert_ids))
        if not ids:
            return 0
        with self._lock:
            removed = 0
            for alert_id in ids:
                item = self._memory.pop(alert_id, None)
                if item is not None:
                    self._memory_bytes -= len(item.payload)
                    removed += 1
            try:
                self._db.execute("BEGIN IMMEDIATE")
                for alert_id in ids:
                    cursor = self._db.execute("DELETE FROM outbox WHERE alert_id = ?", (alert_id,))
                    removed += cursor.rowcount
                self._db.execute("COMMIT")
            except (sqlite3.Error, OSError) as exc:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                # Not deleting only means these alerts are sent again later: never a loss.
                log.error(
                    "outbox %s: cannot delete %d acknowledged alerts (%s); they will be resent",
                    self.path,
                    len(ids),
                    exc,
                )
            return removed

    def contains(self, alert_id: str) -> bool:
        with self._lock:
            if alert_id in self._memory:
                return True
            row = self._db.execute(
                "SELECT 1 FROM outbox WHERE alert_id = ?", (alert_id,)
            ).fetchone()
            return row is not None

    def stats(self) -> OutboxStats:
        with self._lock:
            try:
                count, total, oldest = self._db.execute(
                    "SELECT COUNT(*), COALESCE(SUM(size), 0), MIN(enqueued_at) FROM outbox"
                ).fetchone()
            except sqlite3.Error as exc:
                raise OutboxError(f"cannot read outbox {self.path}: {exc}") from exc
            return OutboxStats(int(count), int(total), oldest, len(self._memory))

    def device_counts(self) -> dict[str, int]:
        """How many alerts wait per device id they were made under (stored and held)."""
        with self._lock:
            try:
                rows = self._db.execute(
                    "SELECT device_id, COUNT(*) FROM outbox GROUP BY device_id"
                ).fetchall()
            except sqlite3.Error as exc:
                raise OutboxError(f"cannot read outbox {self.path}: {exc}") from exc
            counts = {str(device): int(count) for device, count in rows}
            for item in self._memory.values():
                counts[item.device_id] = counts.get(item.device_id, 0) + 1
        return counts

    def journal_mode(self) -> str:
        with self._lock:
            return str(self._db.execute("PRAGMA journal_mode").fetchone()[0])

    def limit_pages_for_tests(self, max_pages: int) -> None:
        """Cap the database size (``PRAGMA max_page_count``): a real 'disk full' for tests."""
        with self._lock:
            self._db.execute(f"PRAGMA max_page_count = {int(max_pages)}")
