"""Append-only, hash-chained audit log (JSON lines).

Each line is one record ``{"seq", "time", "kind", "data", "prev", "hash"}`` in canonical JSON
(sorted keys, no spaces, UTF-8). ``hash`` is the sha256 of the canonical JSON of the record
without ``hash``; ``prev`` is the previous record's ``hash`` (64 zeros for the first). Editing a
record breaks its hash; removing or reordering records breaks ``prev`` and ``seq``. Removing
records from the *end* leaves a shorter valid chain, so the head (``seq``, ``hash``) is also sent
in every heartbeat: compare it with the last one dispatch received.

Appends are serialised across threads (a lock) and processes (``flock``), and fsync'd.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge.clock import utc_rfc3339
from edge.errors import AuditError

log = logging.getLogger(__name__)

GENESIS = "0" * 64
_TAIL_CHUNK = 64 * 1024

# Record kinds written by edge. Others may be added; verify does not depend on them.
HIT = "hit"
HIT_HELD_IN_MEMORY = "hit_held_in_memory"
HIT_REJECTED = "hit_rejected"
STORED = "stored"
EVICT = "evict"
SEND = "send"
ACK = "ack"  # the broker's PUBACK (with alerts.require_dispatch_ack false it removes the alert)
DISPATCH_ACK = "dispatch_ack"  # dispatch stored the alerts: they leave the outbox
UNDELIVERED = "undelivered"  # MQTT 5 PUBACK 'no matching subscribers': nobody received it
ACK_INVALID = "ack_invalid"
REFUSED = "refused"
REVIEW = "review"
REVIEW_INVALID = "review_invalid"
WATCHLIST_CHANGE = "watchlist_change"
REPAIRED = "audit_repaired"


def canonical_json(obj: object) -> bytes:
    return json.dumps(
        obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def record_hash(record: Mapping[str, Any]) -> str:
    """sha256 (hex) of the canonical JSON of ``record`` without its ``hash`` field."""
    body = {k: v for k, v in record.items() if k != "hash"}
    return hashlib.sha256(canonical_json(body)).hexdigest()


@dataclass(frozen=True)
class Head:
    """The last record of a log: how many there are and the hash that seals them."""

    seq: int
    hash: str


def _seal(head: Head, kind: str, data: Mapping[str, Any]) -> tuple[bytes, Head]:
    """The line of the record that follows ``head``, and the new head."""
    record: dict[str, Any] = {
        "seq": head.seq + 1,
        "time": utc_rfc3339(),
        "kind": kind,
        "data": dict(data),
        "prev": head.hash,
    }
    record["hash"] = record_hash(record)
    return canonical_json(record) + b"\n", Head(record["seq"], record["hash"])


class AuditLog:
    """An append-only hash-chained log at ``path`` (created with its directory if missing)."""

    def __init__(self, path: Path, *, fsync: bool = True) -> None:
        self.path = path
        self._fsync = fsync
        self._lock = threading.Lock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o640)
        except OSError as exc:
            raise AuditError(
                f"cannot open audit log {path}: {exc.strerror} "
                "(another directory: --state-dir or $EDGE_STATE_DIR)"
            ) from exc
        # The head is cached with the file size it belongs to; another process appending
        # changes the size, and then the head is read again from the file.
        self._head = Head(0, GENESIS)
        self._head_size = -1
        self._head_offset = -1  # where the head's line starts (-1: no record yet)

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def append(self, kind: str, data: Mapping[str, Any]) -> Head:
        """Append one record; returns the new head."""
        return self.append_many([(kind, data)])

    def append_many(self, entries: Iterable[tuple[str, Mapping[str, Any]]]) -> Head:
        """Append several records with one write and one fsync; returns the new head."""
        entries = list(entries)
        with self._lock:
            if self._fd < 0:
                raise AuditError(f"audit log {self.path} is closed")
            if not entries:
                return self._head
            try:
                with self._file_locked():
                    head = self._current_head()
                    lines = []
                    for kind, data in entries:
                        line, head = _seal(head, kind, data)
                        lines.append(line)
                    self._write_all(b"".join(lines))
                    self._head = head
                    self._head_size = os.fstat(self._fd).st_size
                    self._head_offset = self._head_size - len(lines[-1])
                    return head
            except OSError as exc:
                raise AuditError(
                    f"cannot append to audit log {self.path}: {exc.strerror or exc}"
                ) from exc
            except (TypeError, ValueError) as exc:
                raise AuditError(f"audit record is not JSON-serialisable: {exc}") from exc

    def append_or_log(self, entries: Iterable[tuple[str, Mapping[str, Any]]]) -> None:
        """:meth:`append_many` for callers whose own work must go on when the log cannot be
        written (an alert is safe in the outbox either way): the failure is logged, not raised."""
        entries = list(entries)
        if not entries:
            return
        try:
            self.append_many(entries)
        except AuditError as exc:
            log.error("%s (records: %s)", exc, ", ".join(kind for kind, _ in entries))

    def head(self) -> Head:
        with self._lock:
            if self._fd < 0:
                raise AuditError(f"audit log {self.path} is closed")
            try:
                with self._file_locked():
                    return self._current_head()
            except OSError as exc:
                raise AuditError(f"cannot read audit log {self.path}: {exc.strerror}") from exc

    def anchor(self) -> tuple[Head, int]:
        """The head and the file offset of its line (-1 for an empty log): what
        :meth:`hash_at` needs to tell later whether this record is still there, unchanged."""
        with self._lock:
            if self._fd < 0:
                raise AuditError(f"audit log {self.path} is closed")
            try:
                with self._file_locked():
                    return self._current_head(), self._head_offset
            except OSError as exc:
                raise AuditError(f"cannot read audit log {self.path}: {exc.strerror}") from exc

    def hash_at(self, offset: int, seq: int) -> str | None:
        """The hash of record ``seq`` if it still starts at ``offset``, else None: the log was
        cut below it or rewritten (how a truncation that was later appended past gets caught)."""
        if offset < 0:
            return None
        with self._lock:
            if self._fd < 0:
                raise AuditError(f"audit log {self.path} is closed")
            try:
                raw = os.pread(self._fd, _TAIL_CHUNK, offset)
            except OSError as exc:
                raise AuditError(f"cannot read audit log {self.path}: {exc.strerror}") from exc
        line, newline, _ = raw.partition(b"\n")
        if not newline:
            return None
        try:
            record = json.loads(line)
            if int(record["seq"]) != seq or record_hash(record) != record["hash"]:
                return None
            return str(record["hash"])
        except (ValueError, KeyError, TypeError):
            return None

    @contextlib.contextmanager
    def _file_locked(self) -> Iterator[None]:
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def _write_all(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        if self._fsync:
            os.fsync(self._fd)

    def _current_head(self) -> Head:
        """The head from the file (holding the file lock), repairing a torn last line."""
        size = os.fstat(self._fd).st_size
        if size == self._head_size:
            return self._head
        last_line, complete_end = self._read_last_line(size) if size else (None, 0)
        repair = self._repair_torn_tail(complete_end, size) if complete_end < size else None
        head = Head(0, GENESIS)
        offset = -1
        if last_line is not None:
            offset = complete_end - len(last_line) - 1
            try:
                record = json.loads(last_line)
                head = Head(int(record["seq"]), str(record["hash"]))
            except (ValueError, KeyError, TypeError) as exc:
                raise AuditError(
                    f"audit log {self.path}: last record is unreadable, run 'edge audit verify'"
                ) from exc
        if repair is not None:
            line, head = _seal(head, REPAIRED, repair)
            self._write_all(line)
            offset = os.fstat(self._fd).st_size - len(line)
        self._head, self._head_size = head, os.fstat(self._fd).st_size
        self._head_offset = offset
        return head

    def _read_last_line(self, size: int) -> tuple[bytes | None, int]:
        """The last newline-terminated line and the offset just after it."""
        end = size
        tail = b""
        while True:
            start = max(0, end - _TAIL_CHUNK)
            tail = os.pread(self._fd, end - start, start) + tail
            end = start
            complete = tail.rfind(b"\n")
            if complete < 0:
                if start == 0:
                    return None, 0
                continue
            previous = tail.rfind(b"\n", 0, complete)
            if previous >= 0 or start == 0:
                line = tail[previous + 1 : complete]
                return line, start + complete + 1

    def _repair_torn_tail(self, complete_end: int, size: int) -> dict[str, Any]:
        # A write interrupted by a crash left a partial line. Its append never returned, so the
        # record never existed; keep its digest in a repair record rather than hide it.
        torn = os.pread(self._fd, size - complete_end, complete_end)
        log.warning(
            "audit log %s: discarding a %d-byte partial record left by an interrupted write",
            self.path,
            len(torn),
        )
        os.ftruncate(self._fd, complete_end)
        return {"discarded_bytes": len(torn), "discarded_sha256": hashlib.sha256(torn).hexdigest()}


# --- verification ------------------------------------------------------------------------------


@dataclass
class VerifyResult:
    records: int = 0
    head: Head = field(default_factory=lambda: Head(0, GENESIS))
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _seqs_present(path: Path) -> set[int]:
    seqs: set[int] = set()
    with path.open("rb") as handle:
        for raw in handle:
            try:
                seq = json.loads(raw)["seq"]
            except (ValueError, KeyError, TypeError):
                continue
            if isinstance(seq, int):
                seqs.add(seq)
    return seqs


def verify(path: Path, *, max_problems: int = 20) -> VerifyResult:
    """Check every record's hash, ``prev`` link and ``seq``; list what is wrong, by line."""
    result = VerifyResult()
    try:
        # First pass: which seqs exist at all, to tell "removed" from "moved".
        present = _seqs_present(path)
        handle = path.open("rb")
    except OSError as exc:
        raise AuditError(f"cannot read audit log {path}: {exc.strerror}") from exc
    prev_hash = GENESIS
    expected_seq = 1
    with handle:
        for line_no, raw in enumerate(handle, start=1):
            if len(result.problems) >= max_problems:
                result.problems.append("(more problems not listed)")
                break
            if not raw.endswith(b"\n"):
                result.problems.append(f"line {line_no}: incomplete last record (torn write)")
                break
            try:
                record = json.loads(raw)
                seq, stored_hash, prev = record["seq"], record["hash"], record["prev"]
                if not isinstance(seq, int):
                    raise TypeError("seq")
            except (ValueError, KeyError, TypeError):
                result.problems.append(f"line {line_no}: not an audit record (unreadable)")
                continue
            result.records += 1
            where = f"line {line_no} (seq {seq})"
            if record_hash(record) != stored_hash:
                result.problems.append(f"{where}: contents do not match its hash: record edited")
            if seq < expected_seq:
                result.problems.append(
                    f"{where}: out of order, after seq {expected_seq - 1}: records reordered "
                    "or copied"
                )
            elif seq > expected_seq:
                missing = [n for n in range(expected_seq, seq) if n not in present]
                if len(missing) == seq - expected_seq:
                    result.problems.append(
                        f"{where}: records seq {expected_seq}..{seq - 1} missing: removed"
                    )
                else:
                    result.problems.append(
                        f"{where}: out of order, expected seq {expected_seq} here: records "
                        "reordered" + (f" ({len(missing)} also removed)" if missing else "")
                    )
            if prev != prev_hash:
                result.problems.append(
                    f"{where}: 'prev' is not the hash of the record before it: the chain is "
                    "broken (a record was edited, removed or reordered)"
                )
            prev_hash = stored_hash
            expected_seq = max(expected_seq, seq + 1)
            result.head = Head(seq, str(stored_hash))
    return result


def read_records(path: Path) -> list[dict[str, Any]]:
    """Every record, in file order (for tests and tooling; does not verify)."""
    try:
        lines = path.read_bytes().splitlines()
    except OSError as exc:
        raise AuditError(f"cannot read audit log {path}: {exc.strerror}") from exc
    return [json.loads(line) for line in lines if line.strip()]


# --- CLI ---------------------------------------------------------------------------------------
