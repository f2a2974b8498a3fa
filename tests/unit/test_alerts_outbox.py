from __future__ import annotations

import json
import logging
import sqlite3
from pathlib import Path

import pytest
from alerts_helpers import sample_alert

from edge import audit as kinds
from edge.alerts.model import Alert
from edge.alerts.outbox import Outbox
from edge.audit import AuditLog, read_records, verify
from edge.config.alerts import OutboxConfig
from edge.errors import AlertError, OutboxError


def _outbox(tmp_path: Path, **settings: object) -> Outbox:
    audit = AuditLog(tmp_path / "audit.jsonl", fsync=False)
    return Outbox(tmp_path / "outbox.db", OutboxConfig.model_validate(settings), audit=audit)


def _kinds(tmp_path: Path) -> list[str]:
    return [r["kind"] for r in read_records(tmp_path / "audit.jsonl")]


def test_enqueue_commits_in_wal_mode_and_fetch_is_oldest_first(tmp_path: Path) -> None:
    with _outbox(tmp_path) as outbox:
        assert outbox.journal_mode() == "wal"
        ids = [outbox.enqueue(sample_alert(n)) for n in range(5)]
        items = outbox.fetch(limit=10)
        assert [i.alert_id for i in items] == ids
        assert [i.seq for i in items] == sorted(i.seq for i in items)
        assert json.loads(items[0].payload)["entry"]["id"] == "e0"
        assert [i.alert_id for i in outbox.fetch(after_seq=items[2].seq)] == ids[3:]
    assert _kinds(tmp_path) == [kinds.HIT] * 5


def test_alerts_survive_reopening_until_acknowledged(tmp_path: Path) -> None:
    with _outbox(tmp_path) as outbox:
        ids = [outbox.enqueue(sample_alert(n)) for n in range(3)]
    with _outbox(tmp_path) as outbox:
        assert [i.alert_id for i in outbox.fetch()] == ids
        assert outbox.ack([ids[1], "not-there"]) == 1
        assert [i.alert_id for i in outbox.fetch()] == [ids[0], ids[2]]
        assert outbox.stats().depth == 2
    # A separate SQLite connection (another process) sees the same committed state.
    with sqlite3.connect(tmp_path / "outbox.db") as db:
        assert db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0] == 2


def test_enqueueing_the_same_alert_twice_stores_it_once(tmp_path: Path) -> None:
    alert = sample_alert()
    with _outbox(tmp_path) as outbox:
        outbox.enqueue(alert)
        outbox.enqueue(alert)
        assert outbox.stats().depth == 1


def test_invalid_alert_is_refused_and_nothing_is_stored(tmp_path: Path) -> None:
    # An alert is checked when it is made: an invalid one never reaches the outbox.
    document = {**sample_alert().document(), "quality": 7}
    with _outbox(tmp_path) as outbox:
        with pytest.raises(AlertError, match="quality"):
            outbox.enqueue(Alert.model_validate(document))
        assert outbox.stats().depth == 0


def test_drop_oldest_evicts_into_the_audit_log_not_silently(tmp_path: Path) -> None:
    with _outbox(tmp_path, max_alerts=3) as outbox:
        ids = [outbox.enqueue(sample_alert(n)) for n in range(5)]
        assert [i.alert_id for i in outbox.fetch()] == ids[2:]
    records = read_records(tmp_path / "audit.jsonl")
    evicted = [r["data"]["alert"] for r in records if r["kind"] == kinds.EVICT]
    assert [a["alert_id"] for a in evicted] == ids[:2]
    # The full alert (less the crop) is kept, so what was lost can still be read.
    assert evicted[0]["entry"] == {"id": "e0", "label": "Person 0"}
    assert verify(tmp_path / "audit.jsonl").ok


def test_byte_bound_is_enforced(tmp_path: Path) -> None:
    jpeg = b"\xff\xd8\xff\xe0" + bytes(20_000)
    with _outbox(tmp_path, max_bytes=64 * 1024) as outbox:
        for n in range(5):
            outbox.enqueue(sample_alert(n, crop_jpeg=jpeg))
        stats = outbox.stats()
        assert stats.bytes <= 64 * 1024
        assert stats.depth == 2


def test_reject_new_refuses_and_records_the_refused_alert(tmp_path: Path) -> None:
    with _outbox(tmp_path, max_alerts=2, when_full="reject_new") as outbox:
        kept = [outbox.enqueue(sample_alert(n)) for n in range(2)]
        refused = sample_alert(9)
        with pytest.raises(OutboxError, match="outbox full"):
            outbox.enqueue(refused)
        assert [i.alert_id for i in outbox.fetch()] == kept
    records = read_records(tmp_path / "audit.jsonl")
    assert records[-1]["kind"] == kinds.HIT_REJECTED
    assert records[-1]["data"]["alert"]["alert_id"] == refused.alert_id


def _fill_until_full(outbox: Outbox) -> None:
    # PRAGMA max_page_count makes SQLite fail with a real SQLITE_FULL "database or disk is full".
    pages = outbox._db.execute("PRAGMA page_count").fetchone()[0]
    outbox.limit_pages_for_tests(pages)


def test_disk_full_holds_alerts_in_memory_and_stores_them_when_there_is_room(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with _outbox(tmp_path) as outbox:
        first = outbox.enqueue(sample_alert(0))
        _fill_until_full(outbox)
        jpeg = b"\xff\xd8\xff\xe0" + bytes(8000)
        with caplog.at_level(logging.ERROR, logger="edge.alerts.outbox"):
            held = outbox.enqueue(sample_alert(1, crop_jpeg=jpeg))
        assert "cannot store alert" in caplog.text and "full" in caplog.text
        assert [i.alert_id for i in outbox.held()] == [held]
        assert outbox.stats().held_in_memory == 1
        assert outbox.contains(held)

        outbox.limit_pages_for_tests(1_000_000)
        outbox.retry_held()
        assert outbox.held() == []
        assert [i.alert_id for i in outbox.fetch()] == [first, held]
    assert _kinds(tmp_path) == [kinds.HIT, kinds.HIT_HELD_IN_MEMORY, kinds.STORED]


def test_disk_full_without_memory_fallback_raises_a_one_line_error(tmp_path: Path) -> None:
    with _outbox(tmp_path, memory_fallback=0) as outbox:
        outbox.enqueue(sample_alert(0))
        _fill_until_full(outbox)
        with pytest.raises(OutboxError) as raised:
            outbox.enqueue(sample_alert(1, crop_jpeg=b"\xff\xd8\xff\xe0" + bytes(8000)))
    message = str(raised.value)
    assert "disk full" in message and "not queued" in message and "\n" not in message
    assert _kinds(tmp_path)[-1] == kinds.HIT_REJECTED


def test_ack_of_a_held_alert_removes_it(tmp_path: Path) -> None:
    with _outbox(tmp_path) as outbox:
        outbox.enqueue(sample_alert(0))
        _fill_until_full(outbox)
        held = outbox.enqueue(sample_alert(1, crop_jpeg=b"\xff\xd8\xff\xe0" + bytes(8000)))
        assert outbox.ack([held]) == 1
        assert outbox.held() == []


def test_unopenable_outbox_is_a_one_line_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(OutboxError, match="cannot open outbox"):
        Outbox(blocker / "outbox.db")


def test_each_alert_keeps_the_device_id_it_was_made_under(tmp_path: Path) -> None:
    with _outbox(tmp_path) as outbox:
        first = outbox.enqueue(sample_alert(0, device_id="edge-0"))
        outbox.enqueue(sample_alert(1, device_id="cam-8"))
        outbox.enqueue(sample_alert(2, device_id="cam-8"))
        _fill_until_full(outbox)
        held = outbox.enqueue(
            sample_alert(3, device_id="edge-0", crop_jpeg=b"\xff\xd8\xff\xe0" + bytes(8000))
        )
        assert outbox.device_counts() == {"edge-0": 2, "cam-8": 2}  # one of them held
        assert outbox.fetch(limit=1)[0].device_id == "edge-0"
        assert outbox.get([first])[0].device_id == "edge-0"
        assert [(i.alert_id, i.device_id) for i in outbox.held()] == [(held, "edge-0")]


def test_an_outbox_written_before_rows_kept_their_device_id_gets_them_from_the_alerts(
    tmp_path: Path,
) -> None:
    alerts = [sample_alert(0, device_id="edge-0"), sample_alert(1, device_id="cam-8")]
    with sqlite3.connect(tmp_path / "outbox.db") as db:  # the table as earlier versions made it
        db.execute(
            "CREATE TABLE outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, alert_id TEXT NOT NULL "
            "UNIQUE, payload BLOB NOT NULL, size INTEGER NOT NULL, enqueued_at REAL NOT NULL)"
        )
        for alert in alerts:
            payload = json.dumps(alert.document()).encode()
            db.execute(
                "INSERT INTO outbox (alert_id, payload, size, enqueued_at) VALUES (?, ?, ?, 0)",
                (alert.alert_id, payload, len(payload)),
            )
    with _outbox(tmp_path) as outbox:
        assert [(i.alert_id, i.device_id) for i in outbox.fetch()] == [
            (alerts[0].alert_id, "edge-0"),
            (alerts[1].alert_id, "cam-8"),
        ]
        assert outbox.device_counts() == {"edge-0": 1, "cam-8": 1}
        outbox.enqueue(sample_alert(2, device_id="cam-8"))
    with _outbox(tmp_path) as outbox:  # opened again: nothing to add twice
        assert outbox.device_counts() == {"edge-0": 1, "cam-8": 2}
