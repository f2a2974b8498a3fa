"""`device.id` changed while alerts waited in the outbox: each still goes out as the device that
made it, on a real Mosquitto to a real `edge dispatch serve`.

An alert's ``device_id`` is evidence of which device saw the person, and dispatch takes an alert
only from its own device's topic, so an alert queued as edge-0 is sent as edge-0 (on edge-0's
topics) after device.id became cam-8: dispatch stores it under edge-0 and acknowledges it there,
and the device, listening there too, deletes it. A broker whose ACL lets cam-8 use only its own
topics refuses it: the alert stays, the device says once per connection what the operator must
do, and doing it delivers the alert.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path

import pytest
from alerts_helpers import audit_kinds_for
from mqtt_fixtures import BrokerFactory, Mosquitto
from serve_helpers import edge_env, serving

from edge import audit as kinds
from edge.alerts.model import Review
from edge.alerts.service import AlertService
from edge.cli import main
from edge.config import load_config
from edge.dispatch.store import Store

PASSWORD = "broker secret"


def _config(
    tmp_path: Path, port: int, device: str, *, user: str | None = None, protocol: str = "5"
) -> Path:
    path = tmp_path / f"{device}-{user or 'anonymous'}.yaml"
    login = f"  username: {user}\n" if user else ""
    path.write_text(
        f"device:\n  id: {device}\n"
        f"mqtt:\n  host: 127.0.0.1\n  port: {port}\n  protocol: '{protocol}'\n{login}"
        "  reconnect_min_s: 0.05\n  reconnect_max_s: 0.3\n  connect_timeout_s: 3\n"
        "alerts:\n  require_dispatch_ack: true\n  dispatch_ack_timeout_s: 0.3\n"
        "  dispatch_ack_max_interval_s: 0.6\n"
    )
    return path


def _queue_as(config: Path, state: Path, capsys: pytest.CaptureFixture[str]) -> str:
    """One test alert committed (not sent) as the config's device; returns its id."""
    assert main(["alerts", "test", "--no-wait", "--print-ids", *_args(config, state)]) == 0
    return capsys.readouterr().out.splitlines()[0]


def _args(config: Path, state: Path) -> list[str]:
    return ["--config", str(config), "--state-dir", str(state)]


def _status(config: Path, state: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    assert main(["outbox", "status", "--json", *_args(config, state)]) == 0
    status: dict[str, object] = json.loads(capsys.readouterr().out)
    return status


def _wait(predicate: object, timeout_s: float) -> bool:
    assert callable(predicate)
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def test_an_alert_queued_as_the_old_id_is_stored_as_that_device_and_acknowledged(
    mosquitto: Mosquitto, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state, centre = tmp_path / "device", tmp_path / "centre"
    old = _queue_as(_config(tmp_path, mosquitto.port, "edge-0"), state, capsys)
    renamed = _config(tmp_path, mosquitto.port, "cam-8")
    status = _status(renamed, state, capsys)
    assert status["depth"] == 1 and status["devices"] == {"edge-0": 1}
    assert main(["outbox", "status", *_args(renamed, state)]) == 0
    assert "as edge-0: 1 alert (not device.id (cam-8): sent as edge-0" in capsys.readouterr().out

    with serving(mosquitto.port, centre):
        assert main(["alerts", "test", "--timeout", "60", *_args(renamed, state)]) == 0
        out = capsys.readouterr().out
        assert "sent 1 test alert: all acknowledged by dispatch (via " in out
        assert "still wait" not in out  # the old alert went too, and was acknowledged
        assert _status(renamed, state, capsys)["depth"] == 0
    with Store(f"sqlite:///{centre / 'dispatch.db'}") as store:
        assert store.count_alerts() == 2
        stored = store.get_alert(old)
        assert stored["device_id"] == "edge-0"  # the evidence, never rewritten
    assert kinds.DISPATCH_ACK not in audit_kinds_for(state / "audit.jsonl", old)  # listed by id
    acked = [
        record["data"]["alert_ids"]
        for record in map(json.loads, (state / "audit.jsonl").read_text().splitlines())
        if record["kind"] == kinds.DISPATCH_ACK
    ]
    assert [old] in acked


def test_the_renamed_device_hears_reviews_of_alerts_it_sent_as_the_old_id(
    mosquitto: Mosquitto, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state, centre = tmp_path / "device", tmp_path / "centre"
    old = _queue_as(_config(tmp_path, mosquitto.port, "edge-0"), state, capsys)
    reviews: list[Review] = []
    heard = threading.Event()

    def on_review(review: Review) -> None:
        reviews.append(review)
        heard.set()

    config = load_config(_config(tmp_path, mosquitto.port, "cam-8"))
    with (
        serving(mosquitto.port, centre),
        AlertService(config, state_dir=state, on_review=on_review) as service,
    ):
        assert service.publisher.wait_acked([old], 60) == set()
        broker = ["--broker", f"127.0.0.1:{mosquitto.port}"]
        assert main(["alerts", "review", old, "reject", "--device", "edge-0", *broker]) == 0
        assert heard.wait(30)
    assert [(r.alert_id, r.decision) for r in reviews] == [(old, "reject")]


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_a_broker_acl_for_the_new_id_only_is_said_once_with_the_fix_and_the_fix_works(
    broker_factory: BrokerFactory,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    protocol: str,
) -> None:
    """MQTT 5 says 'Not authorized' for the old id's alert; MQTT 3.1.1 brokers drop it and
    acknowledge it, so the sign there is that no dispatch ack comes while it is sent again."""
    broker = broker_factory(
        "acl",
        users={"cam-8": PASSWORD, "edge-0": PASSWORD, "dispatch": PASSWORD},
        acl={
            "cam-8": ["edge/v1/cam-8/#"],
            "edge-0": ["edge/v1/edge-0/#"],
            "dispatch": ["edge/v1/#"],
        },
    )
    broker.start()
    monkeypatch.setenv("EDGE_MQTT_PASSWORD", PASSWORD)
    state, centre = tmp_path / "device", tmp_path / "centre"
    old_config = _config(tmp_path, broker.port, "edge-0", user="edge-0", protocol=protocol)
    old = _queue_as(old_config, state, capsys)
    centre_config = _config(tmp_path, broker.port, "centre", user="dispatch")
    env = edge_env(EDGE_MQTT_PASSWORD=PASSWORD)
    caplog.set_level(logging.INFO, logger="edge.alerts")
    renamed = _config(tmp_path, broker.port, "cam-8", user="cam-8", protocol=protocol)
    with serving(broker.port, centre, config=centre_config, env=env):
        with AlertService(load_config(renamed), state_dir=state) as service:
            mine = service.test_hit("cam-8's own alert", 1)
            assert service.publisher.wait_acked([mine], 60) == set(), "own topics still work"
            assert _wait(lambda: _sends(state, old) >= 3, 60)
            assert service.outbox.contains(old)  # kept: never lost, never acknowledged
        messages = [r.getMessage() for r in caplog.records]

        # The device's own alerts still go; the line says what is left behind, and as whom.
        assert main(["alerts", "test", "--timeout", "60", *_args(renamed, state)]) == 0
        out = capsys.readouterr().out
        assert "sent 1 test alert: all acknowledged by dispatch (via " in out
        assert out.rstrip().endswith(
            "; 1 other alert (1 queued as edge-0) still waits in the outbox: edge outbox status"
        )

        # The fix the log names: send them with edge-0's broker credentials.
        assert main(["outbox", "flush", "--timeout", "60", *_args(old_config, state)]) == 0
        assert "outbox empty: 1 alert acknowledged by dispatch" in capsys.readouterr().out
    with Store(f"sqlite:///{centre / 'dispatch.db'}") as store:
        assert store.get_alert(old)["device_id"] == "edge-0"
    audited = audit_kinds_for(state / "audit.jsonl", old)
    # MQTT 5: the broker said so; MQTT 3.1.1: it took the alert (PUBACK) and dropped it.
    assert (kinds.REFUSED in audited) == (protocol == "5")
    assert kinds.ACK in audited or protocol == "5"
    assert any("the outbox holds 1 alert(s) queued as edge-0" in m for m in messages)
    said = [m for m in messages if "refused this device the topics of edge-0" in m]
    if protocol == "3.1.1":
        said = [m for m in messages if "alerts queued as edge-0 are sent again" in m]
    assert len(said) == 1, messages  # once, not once per send or connection
    assert "edge/v1/edge-0/alert" in said[0] and "`edge outbox flush --config FILE`" in said[0]
    if protocol == "5":
        assert "(Not authorized)" in said[0]


def _sends(state: Path, alert_id: str) -> int:
    records = map(json.loads, (state / "audit.jsonl").read_text().splitlines())
    return sum(1 for r in records if r["kind"] == kinds.SEND and r["data"]["alert_id"] == alert_id)
