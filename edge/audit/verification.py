"""Checking an audit log end to end: every record's hash, ``prev`` link and ``seq``, and what
each repair record says was cut (and whether its side file still holds it)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge.audit.kinds import REPAIR_KINDS
from edge.audit.log import GENESIS, MAX_REPAIR_BYTES, Head, record_hash
from edge.errors import AuditError
from edge.system.inputs import load_json, read_bounded


@dataclass
class VerifyResult:
    records: int = 0
    head: Head = field(default_factory=lambda: Head(0, GENESIS))
    problems: list[str] = field(default_factory=list)
    repairs: list[str] = field(default_factory=list)  # damaged tails cut off, one line each

    @property
    def ok(self) -> bool:
        return not self.problems


def _seqs_present(path: Path) -> set[int]:
    seqs: set[int] = set()
    with path.open("rb") as handle:
        for raw in handle:
            try:
                seq = load_json(raw)["seq"]
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
                record = load_json(raw)
                seq, stored_hash, prev = record["seq"], record["hash"], record["prev"]
                if not isinstance(seq, int):
                    raise TypeError("seq")
            except (ValueError, KeyError, TypeError):
                result.problems.append(f"line {line_no}: not an audit record (unreadable)")
                continue
            result.records += 1
            where = f"line {line_no} (seq {seq})"
            if record.get("kind") in REPAIR_KINDS:
                result.repairs.append(f"{where}: {_describe_repair(record.get('data'), path)}")
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


def _describe_repair(data: object, path: Path) -> str:
    """One line on a repair record: what was cut, and whether its side file still holds it."""
    if not isinstance(data, dict):
        data = {}
    size, digest, side = (
        data.get("discarded_bytes"),
        data.get("discarded_sha256"),
        data.get("side_file"),
    )
    text = f"repair: {size} bytes cut after seq {data.get('after_seq', '?')}"
    reason = data.get("reason")
    text += f" ({' '.join(reason.split())})" if isinstance(reason, str) else " (a partial record)"
    if not isinstance(side, str) or not side or Path(side).name != side:
        return text + ", not kept (cut by an earlier version; its sha256 is in the record)"
    try:
        kept = read_bounded(path.parent / side, 2 * MAX_REPAIR_BYTES, "side file", AuditError)
    except AuditError:
        return text + f", kept in {side}: MISSING or unreadable"
    if hashlib.sha256(kept).hexdigest() != digest:
        return text + f", kept in {side}: CHANGED since (sha256 differs)"
    return text + f", kept in {side}"


def read_records(path: Path) -> list[dict[str, Any]]:
    """Every record, in file order (for tests and tooling; does not verify)."""
    try:
        lines = path.read_bytes().splitlines()
    except OSError as exc:
        raise AuditError(f"cannot read audit log {path}: {exc.strerror}") from exc
    return [json.loads(line) for line in lines if line.strip()]
