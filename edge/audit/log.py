"""Append-only, hash-chained audit log (JSON lines).

Each line is one record ``{"seq", "time", "kind", "data", "prev", "hash"}`` in canonical JSON
(sorted keys, no spaces, UTF-8). ``hash`` is the sha256 of the canonical JSON of the record
without ``hash``; ``prev`` is the previous record's ``hash`` (64 zeros for the first). Editing a
record breaks its hash; removing or reordering records breaks ``prev`` and ``seq``. Removing
records from the *end* leaves a shorter valid chain, so the head (``seq``, ``hash``) is also sent
in every heartbeat: compare it with the last one dispatch received.

Appends are serialised across threads (a lock) and processes (``flock``), and fsync'd.

A damaged tail (a partial last line left by a crash, or a last line that no longer parses,
e.g. a flipped byte) would leave no head to chain from. When the log is opened, and whenever
its size changed under it, such a tail is moved aside: its bytes go to a side file next to the
log (``<log>.cut-<sha256 prefix>``), the log is truncated to its last readable record, and the
chain goes on with an ``audit_repair`` record naming what was cut (size, sha256, side file).
``verify`` reports every repair.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge.audit.kinds import REPAIR
from edge.clock import utc_rfc3339
from edge.errors import AuditError
from edge.system.inputs import load_json

# The name these lines always had: operators and their log filters know it.
log = logging.getLogger("edge.audit")

GENESIS = "0" * 64
_TAIL_CHUNK = 64 * 1024
_HASH = re.compile(r"[0-9a-f]{64}")
# A damaged tail is a torn write or a record or two that no longer parse: bytes to kilobytes.
# More than this at the end that is not a record is not damage to repair but another file (or
# a log damaged beyond a tail): it is refused with a one-line error, and nothing is cut.
MAX_REPAIR_BYTES = 1 << 20
CUT_INFIX = ".cut-"


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


def _head_of(line: bytes) -> Head | None:
    """The head a record line gives to chain from, or None if the line is unreadable."""
    try:
        record = load_json(line)
    except ValueError:
        return None
    if not isinstance(record, dict):
        return None
    seq, digest = record.get("seq"), record.get("hash")
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 1:
        return None
    if not isinstance(digest, str) or not _HASH.fullmatch(digest):
        return None
    return Head(seq, digest)


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
        try:
            self.head()  # a damaged tail is repaired now, on open
        except AuditError:
            self.close()
            raise

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
            record = load_json(line)
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
        """The head from the file (holding the file lock), repairing a damaged tail."""
        size = os.fstat(self._fd).st_size
        if size == self._head_size:
            return self._head
        line, keep = self._read_last_line(size) if size else (None, 0)
        torn = keep < size  # a partial line after the last newline
        unreadable = 0
        head = Head(0, GENESIS)
        offset = -1
        while line is not None:
            found = _head_of(line)
            if found is not None:
                head, offset = found, keep - len(line) - 1
                break
            unreadable += 1  # a complete line that does not parse: cut it too
            keep -= len(line) + 1
            if size - keep > MAX_REPAIR_BYTES:
                raise self._beyond_repair(size - keep)
            line, keep = self._read_last_line(keep) if keep else (None, 0)
        if keep < size:
            line, head = _seal(head, REPAIR, self._cut_tail(keep, size, torn, unreadable, head))
            self._write_all(line)
            offset = os.fstat(self._fd).st_size - len(line)
        self._head, self._head_size = head, os.fstat(self._fd).st_size
        self._head_offset = offset
        return head

    def _beyond_repair(self, tail_bytes: int) -> AuditError:
        return AuditError(
            f"audit log {self.path}: its last {tail_bytes} bytes or more are not audit records, "
            f"beyond a damaged tail (limit {MAX_REPAIR_BYTES}): check the file with 'edge audit "
            "verify' and move it aside"
        )

    def _read_last_line(self, end: int) -> tuple[bytes | None, int]:
        """The last newline-terminated line before ``end`` and the offset just after it."""
        pos = end
        tail = b""
        while True:
            start = max(0, pos - _TAIL_CHUNK)
            tail = os.pread(self._fd, pos - start, start) + tail
            pos = start
            complete = tail.rfind(b"\n")
            if complete < 0:
                if start == 0:
                    return None, 0
            else:
                previous = tail.rfind(b"\n", 0, complete)
                if previous >= 0 or start == 0:
                    line = tail[previous + 1 : complete]
                    return line, start + complete + 1
            if len(tail) > MAX_REPAIR_BYTES:  # no record is this long
                raise self._beyond_repair(len(tail))

    def _cut_tail(
        self, keep: int, size: int, torn: bool, unreadable: int, head: Head
    ) -> dict[str, Any]:
        """Move the bytes after ``keep`` to a side file (fsync'd first), truncate the log there,
        and return what the repair record says about them."""
        # A torn line's append never returned, so that record never existed; an unreadable line
        # was a record once. Either way its bytes are kept, and the chain says where.
        cut = os.pread(self._fd, size - keep, keep)
        digest = hashlib.sha256(cut).hexdigest()
        side = self.path.with_name(f"{self.path.name}{CUT_INFIX}{digest[:16]}")
        reasons = []
        if unreadable:
            reasons.append(f"{unreadable} unreadable last record(s)")
        if torn:
            reasons.append("a partial record left by an interrupted write")
        reason = " and ".join(reasons)
        try:
            fd = os.open(side, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o640)
            try:
                view = memoryview(cut)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
            directory = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)
        except OSError as exc:
            raise AuditError(
                f"audit log {self.path}: cannot keep its damaged tail in {side} ({exc.strerror}); "
                "nothing was cut"
            ) from exc
        log.warning(
            "audit log %s: moved %d bytes (%s) after seq %d to %s",
            self.path,
            len(cut),
            reason,
            head.seq,
            side,
        )
        os.ftruncate(self._fd, keep)
        return {
            "reason": reason,
            "after_seq": head.seq,
            "discarded_bytes": len(cut),
            "discarded_sha256": digest,
            "side_file": side.name,
        }
