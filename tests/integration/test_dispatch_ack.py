"""The device's half of end-to-end delivery (alerts.require_dispatch_ack), on a real Mosquitto.

A small stand-in plays dispatch here: it subscribes and publishes acks as `edge dispatch serve`
does. The real dispatch is tested in test_dispatch_live.py and test_dispatch_loss.py.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import paho.mqtt.client as paho
from alerts_helpers import Collector, audit_kinds_for, make_config
from deadlines import SHOULD_HAPPEN_S
from mqtt_fixtures import Mosquitto

from edge import audit as kinds
from edge.alerts.model import Ack
from edge.alerts.service import AlertService
from edge.audit import read_records


def _ack_mode(port: int, **alerts: object) -> dict[str, object]:
    return {"require_dispatch_ack": True, "dispatch_ack_timeout_s": 0.5, **alerts}


def _publish(port: int, topic: str, payload: bytes) -> None:
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="fake-dispatch")
    client.connect("127.0.0.1", port)
    client.loop_start()
    client.publish(topic, payload, qos=1).wait_for_publish(5)
    client.disconnect()
    client.loop_stop()


def test_puback_only_marks_sent_and_the_dispatch_ack_deletes(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    config = make_config(mosquitto.port, alerts=_ack_mode(mosquitto.port))
    collector = Collector(mosquitto.port, "edge/v1/cam-1/alert")
    try:
        with AlertService(config, state_dir=tmp_path) as service:
            alert_id = service.test_hit("ack test", 1)
            assert collector.wait_for(lambda c: alert_id in c.alert_ids(), SHOULD_HAPPEN_S)
            time.sleep(0.3)
            assert service.outbox.contains(alert_id), "a PUBACK alone must not delete it"
            # Sent again (same id) while no ack comes.
            assert collector.wait_for(lambda c: len(c.payloads()) >= 2, SHOULD_HAPPEN_S)
            _publish(mosquitto.port, "edge/v1/cam-1/ack", b"{broken")
            _publish(
                mosquitto.port,
                "edge/v1/cam-1/ack",
                Ack((alert_id,), by="fake-dispatch", time="2025-03-01T12:00:00Z").encode(),
            )
            assert service.publisher.wait_acked([alert_id], SHOULD_HAPPEN_S) == set()
            assert service.publisher.dispatch_acked == 1
    finally:
        collector.close()
    assert {p["alert_id"] for p in collector.payloads()} == {alert_id}
    audited = audit_kinds_for(tmp_path / "audit.jsonl", alert_id)
    assert audited[:3] == [kinds.HIT, kinds.SEND, kinds.ACK]
    assert kinds.DISPATCH_ACK not in audited  # its record lists ids: checked below
    records = read_records(tmp_path / "audit.jsonl")
    (done,) = [r for r in records if r["kind"] == kinds.DISPATCH_ACK]
    assert done["data"] == {"alert_ids": [alert_id], "by": "fake-dispatch"}
    assert [r["kind"] for r in records].count(kinds.ACK_INVALID) == 1


def test_no_matching_subscribers_is_not_delivered_and_sent_again(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    config = make_config(mosquitto.port, alerts=_ack_mode(mosquitto.port))
    with AlertService(config, state_dir=tmp_path) as service:
        alert_id = service.test_hit("nobody listens", 1)
        deadline = time.monotonic() + 5
        while service.publisher.undelivered == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert service.publisher.undelivered >= 1 and service.outbox.contains(alert_id)
        # A subscriber (dispatch, back) attaches: the resend reaches it with the same id.
        collector = Collector(mosquitto.port, "edge/v1/cam-1/alert")
        try:
            assert collector.wait_for(lambda c: alert_id in c.alert_ids(), SHOULD_HAPPEN_S)
        finally:
            collector.close()
        _publish(mosquitto.port, "edge/v1/cam-1/ack", Ack((alert_id,)).encode())
        assert service.publisher.wait_acked([alert_id], SHOULD_HAPPEN_S) == set()
    audited = audit_kinds_for(tmp_path / "audit.jsonl", alert_id)
    assert audited[:3] == [kinds.HIT, kinds.SEND, kinds.UNDELIVERED]
    sends = [
        r["data"]
        for r in read_records(tmp_path / "audit.jsonl")
        if r["kind"] == kinds.SEND and r["data"]["alert_id"] == alert_id
    ]
    assert sends[0].get("attempt") is None and sends[-1]["attempt"] >= 2


def test_heartbeat_links_let_dispatch_see_a_truncated_audit_log(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    config = make_config(mosquitto.port, mqtt={"heartbeat_s": 0.2})
    beats = Collector(mosquitto.port, "edge/v1/cam-1/heartbeat")
    try:
        with AlertService(config, state_dir=tmp_path) as service:
            # Links name heads reported in earlier heartbeats: the head must move after one was
            # reported (all five hits may be logged before the first heartbeat goes out).
            service.test_hit("audit", 0)
            assert beats.wait_for(
                lambda c: any(p.get("audit_head", {}).get("seq") for p in c.payloads()),
                SHOULD_HAPPEN_S,
            )
            for n in range(1, 5):
                service.test_hit("audit", n)
            assert beats.wait_for(
                lambda c: any("audit_links" in p for p in c.payloads()), SHOULD_HAPPEN_S
            )
            assert all(
                link["hash"] is not None
                for p in beats.payloads()
                for link in p.get("audit_links", [])
            )
            # Cut the log and write past the old head: seq grows again, the chain does not continue.
            path = tmp_path / "audit.jsonl"
            lines = path.read_bytes().splitlines(keepends=True)
            path.write_bytes(b"".join(lines[:3]))
            for n in range(30):
                service.test_hit("after the cut", 100 + n)
            before = len(beats.payloads())
            assert beats.wait_for(
                lambda c: any(
                    link["hash"] is None
                    for p in c.payloads()[before:]
                    for link in p.get("audit_links", [])
                ),
                SHOULD_HAPPEN_S,
            )
    finally:
        beats.close()
    last = json.loads(json.dumps(beats.payloads()[-1]))
    assert last["audit_head"]["seq"] > 5
