from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import edge.cli
from edge import audit
from edge.audit import GENESIS, AuditLog, read_records, record_hash, verify
from edge.cli import audit as audit_cli
from edge.errors import AuditError


@pytest.fixture
def cli_with_audit(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # Only this area's commands: the test does not depend on the other areas' modules.
    monkeypatch.setattr(edge.cli, "_registrars", lambda: [audit_cli.register])
    yield


def _log_with(path: Path, count: int) -> None:
    with AuditLog(path) as log:
        for n in range(count):
            log.append("hit", {"alert_id": f"a{n}", "score": 0.5 + n / 100})


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def test_records_are_chained_and_verify_clean(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    _log_with(path, 5)
    records = read_records(path)
    assert [r["seq"] for r in records] == [1, 2, 3, 4, 5]
    assert records[0]["prev"] == GENESIS
    for before, after in itertools.pairwise(records):
        assert after["prev"] == before["hash"]
    assert all(record_hash(r) == r["hash"] for r in records)
    result = verify(path)
    assert result.ok and result.records == 5
    assert result.head.hash == records[-1]["hash"]


def test_reopening_continues_the_chain(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    _log_with(path, 2)
    with AuditLog(path) as log:
        head = log.append_many([("send", {"alert_id": "a0"}), ("ack", {"alert_id": "a0"})])
    assert head.seq == 4
    assert verify(path).ok


def test_edited_record_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    _log_with(path, 5)
    lines = _lines(path)
    lines[2] = lines[2].replace(b'"score":0.52', b'"score":0.99')
    path.write_bytes(b"".join(lines))
    result = verify(path)
    assert not result.ok
    assert any("line 3" in p and "edited" in p for p in result.problems)


def test_edited_record_with_a_recomputed_hash_is_detected_by_the_chain(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    _log_with(path, 5)
    lines = _lines(path)
    record = json.loads(lines[2])
    record["data"]["score"] = 0.99
    record["hash"] = record_hash(record)
    lines[2] = audit.canonical_json(record) + b"\n"
    path.write_bytes(b"".join(lines))
    result = verify(path)
    assert not result.ok
    assert any("line 4" in p and "chain is broken" in p for p in result.problems)


def test_deleted_record_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    _log_with(path, 5)
    lines = _lines(path)
    del lines[1]
    path.write_bytes(b"".join(lines))
    result = verify(path)
    assert not result.ok
    assert any("seq 2..2 missing" in p for p in result.problems)


def test_swapped_records_are_detected(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    _log_with(path, 5)
    lines = _lines(path)
    lines[1], lines[2] = lines[2], lines[1]
    path.write_bytes(b"".join(lines))
    result = verify(path)
    assert not result.ok
    assert any("line 2" in p and "reordered" in p for p in result.problems)
    assert any("line 3" in p and "reordered" in p for p in result.problems)


def test_torn_last_line_is_repaired_and_recorded(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    _log_with(path, 3)
    with path.open("ab") as handle:
        handle.write(b'{"seq":4,"kind":"hi')  # a crash in the middle of a write
    assert not verify(path).ok
    with AuditLog(path) as log:
        head = log.append("ack", {"alert_id": "a2"})
    records = read_records(path)
    assert [r["kind"] for r in records[-2:]] == [audit.REPAIR, "ack"]
    assert records[-2]["data"]["discarded_bytes"] == 19
    side = path.with_name(records[-2]["data"]["side_file"])
    assert side.read_bytes() == b'{"seq":4,"kind":"hi'  # the cut bytes are kept
    assert head.seq == 5
    assert verify(path).ok


def test_concurrent_writers_on_separate_handles_keep_one_chain(tmp_path: Path) -> None:
    # Two handles stand for two processes (the service and 'edge alerts test'): flock + re-read.
    path = tmp_path / "audit.jsonl"
    logs = [AuditLog(path, fsync=False), AuditLog(path, fsync=False)]

    def write(log: AuditLog, tag: str) -> None:
        for n in range(200):
            log.append("hit", {"alert_id": f"{tag}{n}"})

    threads = [
        threading.Thread(target=write, args=(log, tag)) for log, tag in zip(logs, "ab", strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for log in logs:
        log.close()
    result = verify(path)
    assert result.ok, result.problems
    assert result.records == 400


def test_cli_verify_reports_intact_and_tampered_logs(
    tmp_path: Path, cli_with_audit: None, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "audit.jsonl"
    _log_with(path, 4)
    assert edge.cli.main(["audit", "verify", "--path", str(path)]) == 0
    assert "4 records, chain intact" in capsys.readouterr().out

    lines = _lines(path)
    lines[0], lines[3] = lines[3], lines[0]
    path.write_bytes(b"".join(lines))
    assert edge.cli.main(["audit", "verify", "--path", str(path)]) == 1
    err = capsys.readouterr().err
    assert "TAMPERED" in err and "line 1" in err


def test_cli_verify_uses_the_state_dir(
    tmp_path: Path,
    cli_with_audit: None,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _log_with(tmp_path / "audit.jsonl", 2)
    monkeypatch.setenv("EDGE_STATE_DIR", str(tmp_path))
    assert edge.cli.main(["audit", "verify"]) == 0
    assert "2 records" in capsys.readouterr().out


def test_cli_verify_of_a_missing_log_is_a_one_line_error(
    tmp_path: Path, cli_with_audit: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert edge.cli.main(["audit", "verify", "--path", str(tmp_path / "nope.jsonl")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("edge: error: cannot read audit log") and err.count("\n") == 1


# --- an unreadable last line (issue 12) ---------------------------------------------------------


def _flip_quote(line: bytes) -> bytes:
    return line.replace(b'"kind"', b'"kind\x01', 1)  # a flipped byte: no longer JSON


DAMAGE = {
    "flipped byte": _flip_quote,
    "not an object": lambda line: b"[1,2,3]\n",
    "seq is text": lambda line: line.replace(b'"seq":3', b'"seq":"3"'),
    "hash missing": lambda line: line.replace(b'"hash":', b'"hush":'),
    "nested JSON": lambda line: b"[" * 100_000 + b"]" * 100_000 + b"\n",
    "not UTF-8": lambda line: line.replace(b'"hit"', b'"h\xffit"'),
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_an_unreadable_last_line_is_moved_aside_and_the_chain_goes_on(
    tmp_path: Path, damage: str, cli_with_audit: None, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "audit.jsonl"
    _log_with(path, 3)
    lines = _lines(path)
    lines[-1] = DAMAGE[damage](lines[-1])
    path.write_bytes(b"".join(lines))
    with AuditLog(path) as log:  # repaired on open
        assert log.head().seq == 3
        head = log.append("ack", {"alert_id": "a2"})
        assert log.append("send", {"alert_id": "a3"}).seq == 5
    assert head.seq == 4
    records = read_records(path)
    assert [r["kind"] for r in records] == ["hit", "hit", audit.REPAIR, "ack", "send"]
    repair = records[2]["data"]
    assert repair["after_seq"] == 2 and "1 unreadable last record" in repair["reason"]
    assert repair["discarded_bytes"] == len(lines[-1])
    side = path.with_name(repair["side_file"])
    assert side.read_bytes() == lines[-1] and side.parent == path.parent
    result = verify(path)
    assert result.ok, result.problems
    (reported,) = result.repairs
    assert f"{len(lines[-1])} bytes cut after seq 2" in reported and side.name in reported

    assert edge.cli.main(["audit", "verify", "--path", str(path)]) == 0
    out = capsys.readouterr().out
    assert "chain intact; 1 repair(s)" in out and f"kept in {side.name}" in out


def test_a_repair_whose_side_file_is_gone_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    _log_with(path, 2)
    with path.open("ab") as handle:
        handle.write(b"garbage\n")
    AuditLog(path).close()
    (side,) = tmp_path.glob("audit.jsonl.cut-*")
    side.unlink()
    (reported,) = verify(path).repairs
    assert "MISSING" in reported


def test_logs_repaired_by_earlier_versions_still_verify(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    _log_with(path, 2)
    with AuditLog(path) as log:
        log.append(audit.REPAIRED_BEFORE, {"discarded_bytes": 7, "discarded_sha256": "0" * 64})
    result = verify(path)
    assert result.ok and result.records == 3
    (reported,) = result.repairs
    assert "7 bytes cut" in reported and "not kept" in reported


def test_a_tail_too_long_to_be_a_damaged_record_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    _log_with(path, 2)
    with path.open("ab") as handle:
        handle.write(b"not a record\n" * (audit.MAX_REPAIR_BYTES // 10))
    size = path.stat().st_size
    with pytest.raises(AuditError) as caught:
        AuditLog(path)
    assert "not audit records" in str(caught.value) and "\n" not in str(caught.value)
    assert path.stat().st_size == size and not list(tmp_path.glob("*.cut-*"))


def test_verify_reads_a_nested_line_in_the_middle_as_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    _log_with(path, 3)
    lines = _lines(path)
    lines[1] = b"[" * 100_000 + b"]" * 100_000 + b"\n"
    path.write_bytes(b"".join(lines))
    result = verify(path)
    assert any("line 2: not an audit record" in p for p in result.problems)
