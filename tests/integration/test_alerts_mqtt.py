"""Integration tests against a real Mosquitto broker (tests/mqtt_fixtures.py)."""

from __future__ import annotations

import json
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from alerts_helpers import Collector, SampleHit, audit_kinds_for, make_config
from deadlines import SHOULD_HAPPEN_S
from mqtt_fixtures import BrokerFactory, Mosquitto, make_tls_files
from paths import REPO

from edge import audit as kinds
from edge.alerts.model import Alert, Review, WatchlistRef
from edge.alerts.schema import uuid7
from edge.alerts.service import AlertService
from edge.audit import read_records, verify
from edge.errors import BrokerError


def _hit(service: AlertService, n: int, **extra: Any) -> str:
    return service.hit(
        SampleHit(n, f"e{n}", f"Person {n}", 0.71, 0.6, 0.83, **extra),
        watchlist=WatchlistRef(id="wl-main", version="7"),
        model_id="mobilefacenet-fp32",
    ).alert_id


def _publish(port: int, topic: str, payload: bytes) -> None:
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"dispatch-{uuid7()[-6:]}")
    client.connect("127.0.0.1", port)
    client.loop_start()
    client.publish(topic, payload, qos=1).wait_for_publish(5)
    client.disconnect()
    client.loop_stop()


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_alert_is_delivered_and_deleted_only_after_its_puback(
    mosquitto: Mosquitto, tmp_path: Path, protocol: str
) -> None:
    config = make_config(
        mosquitto.port,
        mqtt={"protocol": protocol},
        device={"location": {"name": "Gate 2", "lat": 51.5, "lon": -0.1}},
    )
    collector = Collector(mosquitto.port, "edge/v1/cam-1/alert")
    try:
        with AlertService(config, state_dir=tmp_path) as service:
            crop = b"\xff\xd8\xff\xe0" + bytes(500)
            alert_id = _hit(service, 1, crop_jpeg=crop)
            assert service.publisher.wait_acked([alert_id], SHOULD_HAPPEN_S) == set()
            assert service.outbox.stats().total == 0
        assert collector.wait_for(lambda c: alert_id in c.alert_ids(), SHOULD_HAPPEN_S)
    finally:
        collector.close()
    _, payload, _ = collector.messages[0]
    alert = Alert.decode(payload).document()  # validated against the shipped schema
    assert alert["alert_id"] == alert_id
    assert alert["location"] == {"name": "Gate 2", "lat": 51.5, "lon": -0.1}
    assert "crop" in alert and alert["test"] is False
    assert audit_kinds_for(tmp_path / "audit.jsonl", alert_id) == [kinds.HIT, kinds.SEND, kinds.ACK]
    assert verify(tmp_path / "audit.jsonl").ok


def test_status_is_retained_online_with_versions_then_offline_on_shutdown(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    config = make_config(mosquitto.port)
    with AlertService(config, state_dir=tmp_path) as service:
        service.status(model_id="mobilefacenet-fp32", watchlist_id="wl-main", watchlist_version=7)
        assert service.publisher.wait_connected(SHOULD_HAPPEN_S)
        time.sleep(0.2)
        # A late subscriber still gets the status: it is retained.
        late = Collector(mosquitto.port, "edge/v1/cam-1/status", client_id="late")
        try:
            assert late.wait_for(
                lambda c: any(p.get("watchlist") for p in c.payloads()), SHOULD_HAPPEN_S
            ), late.payloads()
            online = [p for p in late.payloads() if p.get("watchlist")][-1]
            assert online["state"] == "online"
            assert online["model"] == "mobilefacenet-fp32"
            assert online["watchlist"] == {"id": "wl-main", "version": "7"}
            assert online["software"]
        finally:
            late.close()
    after = Collector(mosquitto.port, "edge/v1/cam-1/status", client_id="after")
    try:
        assert after.wait_for(lambda c: bool(c.payloads()), SHOULD_HAPPEN_S)
        assert after.payloads()[-1]["state"] == "offline"
        assert after.payloads()[-1]["reason"] == "shutdown"
    finally:
        after.close()


def test_heartbeat_reports_uptime_outbox_and_pipeline_stats(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    config = make_config(mosquitto.port, mqtt={"heartbeat_s": 0.2})
    collector = Collector(mosquitto.port, "edge/v1/cam-1/heartbeat")
    try:
        stats = {"fps": 12.5, "queues": {"frames": 3, "faces": 0}}
        with AlertService(config, state_dir=tmp_path, stats_provider=lambda: stats) as service:
            _hit(service, 0)
            assert collector.wait_for(lambda c: len(c.payloads()) >= 2, SHOULD_HAPPEN_S)
    finally:
        collector.close()
    beat = collector.payloads()[-1]
    assert beat["device_id"] == "cam-1"
    assert beat["uptime_s"] >= 0
    assert beat["fps"] == 12.5 and beat["queues"] == {"frames": 3, "faces": 0}
    assert set(beat["outbox"]) >= {"depth", "bytes", "oldest_age_s"}
    assert beat["audit_head"]["seq"] >= 1 and len(beat["audit_head"]["hash"]) == 64


def test_review_decisions_are_delivered_audited_and_malformed_ones_logged(
    mosquitto: Mosquitto, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = make_config(mosquitto.port)
    reviews: list[Review] = []
    got_one = threading.Event()

    def on_review(review: Review) -> None:
        reviews.append(review)
        got_one.set()

    with AlertService(config, state_dir=tmp_path, on_review=on_review) as service:
        alert_id = _hit(service, 0)
        assert service.publisher.wait_acked([alert_id], SHOULD_HAPPEN_S) == set()
        time.sleep(0.2)  # the review subscription is made on connect
        with caplog.at_level(logging.WARNING, logger="edge.alerts.publisher"):
            _publish(mosquitto.port, "edge/v1/cam-1/review", b"{not json")
            _publish(
                mosquitto.port,
                "edge/v1/cam-1/review",
                json.dumps({"alert_id": alert_id, "decision": "maybe"}).encode(),
            )
            _publish(
                mosquitto.port,
                "edge/v1/cam-1/review",
                json.dumps({"alert_id": alert_id, "decision": "confirm", "by": "op-7"}).encode(),
            )
            assert got_one.wait(SHOULD_HAPPEN_S)
    assert [(r.alert_id, r.decision, r.by) for r in reviews] == [(alert_id, "confirm", "op-7")]
    assert caplog.text.count("ignoring a malformed message on edge/v1/cam-1/review") == 2
    records = read_records(tmp_path / "audit.jsonl")
    assert [r["kind"] for r in records if "review" in r["kind"]] == [
        kinds.REVIEW_INVALID,
        kinds.REVIEW_INVALID,
        kinds.REVIEW,
    ]
    assert verify(tmp_path / "audit.jsonl").ok


def test_reviews_sent_while_the_device_is_offline_arrive_later(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    config = make_config(mosquitto.port)
    with AlertService(config, state_dir=tmp_path) as service:
        assert service.publisher.wait_connected(SHOULD_HAPPEN_S)
        time.sleep(0.2)
    alert_id = uuid7()
    _publish(
        mosquitto.port,
        "edge/v1/cam-1/review",
        json.dumps({"alert_id": alert_id, "decision": "reject"}).encode(),
    )
    got: list[Review] = []
    with AlertService(config, state_dir=tmp_path, on_review=got.append):
        deadline = time.monotonic() + 5
        while not got and time.monotonic() < deadline:
            time.sleep(0.02)
    assert [r.alert_id for r in got] == [alert_id]


def test_broker_down_at_start_then_everything_is_sent(
    broker_factory: BrokerFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    broker = broker_factory("late")
    config = make_config(broker.port)
    with (
        caplog.at_level(logging.WARNING, logger="edge.mqtt.connection"),
        AlertService(config, state_dir=tmp_path / "state") as service,
    ):
        ids = [_hit(service, n) for n in range(20)]
        time.sleep(0.3)
        assert service.outbox.stats().depth == 20
        assert f"cannot connect to MQTT broker 127.0.0.1:{broker.port}" in caplog.text
        assert "connection refused" in caplog.text
        broker.start()
        collector = Collector(broker.port, "edge/v1/cam-1/alert")
        try:
            assert service.publisher.wait_acked(ids, SHOULD_HAPPEN_S) == set()
        finally:
            collector.close()


def _restart_burst(broker: Mosquitto, state_dir: Path, total: int, restarts: int) -> dict[str, Any]:
    config = make_config(broker.port, audit={"fsync": False})
    collector = Collector(
        broker.port, "edge/v1/cam-1/alert", persistent=True, client_id="dispatch-desk"
    )
    enqueued: list[str] = []
    started = time.monotonic()
    try:
        with AlertService(config, state_dir=state_dir) as service:

            def produce() -> None:
                for n in range(total):
                    enqueued.append(_hit(service, n))
                    time.sleep(0.003)  # ~a few hundred alerts/s: the burst spans the restarts

            producer = threading.Thread(target=produce)
            producer.start()
            marks = [total * (k + 1) // (restarts + 1) for k in range(restarts)]
            for mark in marks:
                while len(enqueued) < mark:
                    time.sleep(0.005)
                broker.stop()
                time.sleep(0.3)  # down for a while: enqueue goes on, sends fail
                broker.start()
            producer.join()
            assert collector.wait_for(lambda c: set(enqueued) <= c.alert_ids(), 60), (
                f"missing {len(set(enqueued) - collector.alert_ids())}"
            )
            duration = time.monotonic() - started
            connections = service.publisher.connections
            assert service.publisher.wait_empty(10)
    finally:
        collector.close()
    received = [p["alert_id"] for p in collector.payloads()]
    return {
        "enqueued": len(enqueued),
        "distinct_received": len(set(received) & set(enqueued)),
        "received_messages": len(received),
        "duplicates": len(received) - len(set(received)),
        "connections": connections,
        "seconds": round(duration, 2),
    }


def test_1000_alerts_survive_three_broker_restarts(
    persistent_mosquitto: Mosquitto, tmp_path: Path
) -> None:
    # The broker keeps the dispatch subscriber's session (persistence, graceful restarts), so
    # what it accepts while the subscriber is reconnecting is queued for it, not dropped.
    figures = _restart_burst(persistent_mosquitto, tmp_path / "state", 1000, 3)
    print(f"\nburst figures: {json.dumps(figures)}")
    assert figures["enqueued"] == 1000
    assert figures["distinct_received"] == 1000
    assert figures["connections"] >= 4
    assert verify(tmp_path / "state" / "audit.jsonl").ok


def _outbox_ids(state_dir: Path) -> list[str]:
    with sqlite3.connect(state_dir / "outbox.db") as db:
        return [row[0] for row in db.execute("SELECT alert_id FROM outbox ORDER BY seq")]


def test_sigkill_between_enqueue_and_ack_loses_nothing(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    state_dir = tmp_path / "state"
    collector = Collector(mosquitto.port, "edge/v1/cam-1/alert")
    status = Collector(mosquitto.port, "edge/v1/cam-1/status", client_id="status-watch")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    sender_log = (tmp_path / "sender.log").open("w")

    def sender(count: int) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [
                sys.executable,
                str(REPO / "tests" / "alerts_sender.py"),
                str(state_dir),
                str(mosquitto.port),
                str(count),
            ],
            stdout=subprocess.PIPE,
            stderr=sender_log,
            text=True,
            env=env,
        )

    printed: list[str] = []

    def read_ids_until(process: subprocess.Popen[str], total: int) -> None:
        assert process.stdout is not None
        while len(printed) < total:
            line = process.stdout.readline()
            if not line:
                sender_log.flush()
                pytest.fail(f"sender ended early:\n{(tmp_path / 'sender.log').read_text()}")
            printed.append(line.strip())

    assert mosquitto.process is not None
    broker_process = mosquitto.process
    try:
        first = sender(600)
        assert first.stdout is not None
        read_ids_until(first, 100)
        assert collector.wait_for(lambda c: len(c.alert_ids()) >= 20, SHOULD_HAPPEN_S)
        # Freeze the broker so published alerts wait for their PUBACK, keep enqueueing, kill.
        broker_process.send_signal(signal.SIGSTOP)
        read_ids_until(first, 250)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        printed += [line.strip() for line in first.stdout.read().splitlines() if line.strip()]
        broker_process.send_signal(signal.SIGCONT)

        unacked_at_kill = _outbox_ids(state_dir)
        assert len(unacked_at_kill) >= 100, "the kill should leave unacknowledged alerts"
        # The broker publishes the last will for the killed device.
        assert status.wait_for(
            lambda c: bool(c.payloads()) and c.payloads()[-1]["state"] == "offline", 10
        )
        assert status.payloads()[-1]["reason"] == "connection lost"

        second = sender(0)  # restart: drains the outbox, exits when it is empty
        assert second.wait(60) == 0
        hits = [
            r["data"]["alert"]["alert_id"]
            for r in read_records(state_dir / "audit.jsonl")
            if r["kind"] == kinds.HIT
        ]
        assert collector.wait_for(lambda c: set(hits) <= c.alert_ids(), SHOULD_HAPPEN_S)
    finally:
        broker_process.send_signal(signal.SIGCONT)
        collector.close()
        status.close()
        sender_log.close()
    assert set(printed) <= collector.alert_ids()
    assert set(unacked_at_kill) <= collector.alert_ids()
    assert _outbox_ids(state_dir) == []
    print(
        f"\nsigkill: {len(printed)} enqueued before the kill, {len(unacked_at_kill)} "
        f"unacknowledged at the kill, {len(collector.alert_ids())} distinct received"
    )


def test_wrong_password_is_logged_and_alerts_wait_for_the_right_one(
    broker_factory: BrokerFactory,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    broker = broker_factory("auth", users={"cam-1": "s3cret"})
    broker.start()
    config = make_config(broker.port, mqtt={"username": "cam-1"})
    monkeypatch.setenv("EDGE_MQTT_PASSWORD", "wrong")
    with (
        caplog.at_level(logging.ERROR, logger="edge.mqtt.connection"),
        AlertService(config, state_dir=tmp_path) as service,
    ):
        ids = [_hit(service, n) for n in range(3)]
        time.sleep(0.5)
        assert service.outbox.stats().depth == 3
    assert "refused the connection" in caplog.text
    assert "check mqtt.username and the mqtt_password credential" in caplog.text

    # The right password from systemd credentials (they win over the environment).
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "mqtt_password").write_text("s3cret\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(credentials))
    with AlertService(config, state_dir=tmp_path) as service:
        assert service.publisher.wait_acked(ids, SHOULD_HAPPEN_S) == set()


def test_tls_with_client_certificate_delivers_and_a_bad_ca_is_refused(
    broker_factory: BrokerFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    tls = make_tls_files(tmp_path / "pki")
    broker = broker_factory("tls", tls=tls, require_client_cert=True)
    broker.start()
    good = make_config(
        broker.port,
        mqtt={
            "tls": {
                "ca_file": str(tls.ca_cert),
                "cert_file": str(tls.client_cert),
                "key_file": str(tls.client_key),
            }
        },
    )
    bad_ca = make_config(
        broker.port,
        mqtt={
            "tls": {
                "ca_file": str(tls.other_ca_cert),
                "cert_file": str(tls.client_cert),
                "key_file": str(tls.client_key),
            }
        },
    )

    with (
        caplog.at_level(logging.WARNING, logger="edge.mqtt.connection"),
        AlertService(bad_ca, state_dir=tmp_path / "state") as service,
    ):
        ids = [_hit(service, n) for n in range(3)]
        time.sleep(0.5)
        assert service.outbox.stats().depth == 3
    assert "TLS certificate check failed" in caplog.text
    assert "check mqtt.tls.ca_file" in caplog.text

    with AlertService(good, state_dir=tmp_path / "state") as service:
        assert service.publisher.wait_acked(ids, SHOULD_HAPPEN_S) == set()


def test_missing_tls_file_is_a_one_line_error(tmp_path: Path) -> None:
    config = make_config(1883, mqtt={"tls": {"ca_file": str(tmp_path / "nope.pem")}})
    with pytest.raises(BrokerError, match=r"mqtt\.tls\.ca_file .* does not exist"):
        AlertService(config, state_dir=tmp_path)


def test_alert_held_in_memory_on_disk_full_is_still_delivered(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    config = make_config(mosquitto.port)
    with AlertService(config, state_dir=tmp_path) as service:
        first = _hit(service, 0)
        pages = service.outbox._db.execute("PRAGMA page_count").fetchone()[0]
        service.outbox.limit_pages_for_tests(pages)
        held = _hit(service, 1, crop_jpeg=b"\xff\xd8\xff\xe0" + bytes(8000))
        assert service.publisher.wait_acked([first, held], SHOULD_HAPPEN_S) == set()
        assert service.outbox.held() == []
    assert audit_kinds_for(tmp_path / "audit.jsonl", held) == [
        kinds.HIT_HELD_IN_MEMORY,
        kinds.SEND,
        kinds.UNDELIVERED,  # no subscriber: the broker said so, and the log keeps it
        kinds.ACK,
    ]
