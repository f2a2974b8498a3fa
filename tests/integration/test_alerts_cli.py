"""``edge alerts ...`` and ``edge outbox ...`` through edge.cli.main, against real Mosquitto."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from alerts_helpers import Collector
from deadlines import SHOULD_HAPPEN_S
from mqtt_fixtures import BrokerFactory, Mosquitto

import edge.cli
from edge.alerts.model import Alert, Review
from edge.cli import alerts as alerts_cli
from edge.cli import audit as audit_cli


@pytest.fixture(autouse=True)
def only_alert_commands(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # The real main() (logging, error handling) with this area's commands only.
    monkeypatch.setattr(edge.cli, "_registrars", lambda: [alerts_cli.register, audit_cli.register])
    yield


def _config_file(tmp_path: Path, port: int, device: str = "cam-1") -> Path:
    path = tmp_path / f"{device}.yaml"
    path.write_text(
        f"device:\n  id: {device}\n"
        f"mqtt:\n  host: 127.0.0.1\n  port: {port}\n  reconnect_min_s: 0.05\n"
        "  reconnect_max_s: 0.2\n  connect_timeout_s: 3\n"
        # A plain subscriber, no dispatch: the broker's PUBACK ends delivery.
        "alerts:\n  require_dispatch_ack: false\n"
    )
    return path


def test_alerts_test_sends_marked_test_alerts_through_the_outbox(
    mosquitto: Mosquitto, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    collector = Collector(mosquitto.port, "edge/v1/cam-1/alert")
    try:
        code = edge.cli.main(
            [
                "alerts",
                "test",
                "--count",
                "5",
                "--config",
                str(_config_file(tmp_path, mosquitto.port)),
                "--state-dir",
                str(tmp_path / "state"),
            ]
        )
        assert code == 0
        assert "sent 5 test alerts" in capsys.readouterr().out
        assert collector.wait_for(lambda c: len(c.alert_ids()) == 5, SHOULD_HAPPEN_S)
    finally:
        collector.close()
    alerts = [Alert.decode(payload).document() for _, payload, _ in collector.messages]
    assert all(a["test"] is True and a["device_id"] == "cam-1" for a in alerts)
    # Each looks like a real one at the console: a scene from the demo clip, the face boxed.
    assert all(a["context"]["width"] == 640 and len(a["context"]["box"]) == 4 for a in alerts)
    assert edge.cli.main(["audit", "verify", "--state-dir", str(tmp_path / "state")]) == 0


def test_alerts_test_with_the_broker_down_keeps_alerts_for_outbox_flush(
    broker_factory: BrokerFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broker = broker_factory("late")
    state = ["--state-dir", str(tmp_path / "state")]
    config = ["--config", str(_config_file(tmp_path, broker.port))]
    code = edge.cli.main(["alerts", "test", "--count", "3", "--timeout", "0.5", *config, *state])
    assert code == 1
    err = capsys.readouterr().err
    assert "0/3 test alerts acknowledged" in err and "stay in the outbox" in err

    assert edge.cli.main(["outbox", "status", "--json", *config, *state]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["depth"] == 3 and len(status["oldest"]) == 3

    assert edge.cli.main(["outbox", "status", *config, *state]) == 0
    assert "waiting:  3 alerts" in capsys.readouterr().out

    broker.start()
    assert edge.cli.main(["outbox", "flush", "--timeout", "10", *config, *state]) == 0
    assert "outbox empty: 3 alerts acknowledged" in capsys.readouterr().out
    assert edge.cli.main(["outbox", "status", "--json", *config, *state]) == 0
    assert json.loads(capsys.readouterr().out)["depth"] == 0


def test_outbox_status_before_anything_was_queued(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert edge.cli.main(["outbox", "status", "--state-dir", str(tmp_path)]) == 0
    assert "nothing queued" in capsys.readouterr().out


def test_alerts_tail_prints_what_alerts_test_sends_from_every_device(
    mosquitto: Mosquitto, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # `alerts tail` is a plain subscriber: no dispatch stores the alerts, the PUBACK ends delivery.
    # Its own config names cam-1; by default it still hears every device.
    broker = ["--config", str(_config_file(tmp_path, mosquitto.port))]
    result: list[int] = []
    tail = threading.Thread(
        target=lambda: result.append(
            edge.cli.main(["alerts", "tail", "--count", "2", "--timeout", "10", *broker])
        )
    )
    tail.start()
    # The alerts must not be published before tail has subscribed: wait for its notice.
    out, err = "", ""
    deadline = time.monotonic() + 10
    while "listening on edge/v1/+/alert" not in err and time.monotonic() < deadline:
        captured = capsys.readouterr()
        out, err = out + captured.out, err + captured.err
        time.sleep(0.01)
    for device in ("cam-1", "cam-2"):
        config = ["--config", str(_config_file(tmp_path, mosquitto.port, device))]
        state = ["--state-dir", str(tmp_path / device)]
        assert edge.cli.main(["alerts", "test", "--count", "1", *state, *config]) == 0
    tail.join(15)
    assert result == [0]
    out += capsys.readouterr().out
    lines = [line for line in out.splitlines() if "TEST" in line]
    assert len(lines) == 2
    assert [line.split()[1] for line in lines] == ["cam-1", "cam-2"]
    assert "score=1.000/1.000" in lines[0]
    assert "context=640x360," in lines[0]


def test_alerts_tail_device_listens_to_that_device_only(
    mosquitto: Mosquitto, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broker = ["--config", str(_config_file(tmp_path, mosquitto.port))]
    result: list[int] = []
    args = ["alerts", "tail", "--device", "cam-2", "--count", "1", "--timeout", "10", *broker]
    tail = threading.Thread(target=lambda: result.append(edge.cli.main([*args, "--json"])))
    tail.start()
    out, err = "", ""
    deadline = time.monotonic() + 10
    while "listening on edge/v1/cam-2/alert" not in err and time.monotonic() < deadline:
        captured = capsys.readouterr()
        out, err = out + captured.out, err + captured.err
        time.sleep(0.01)
    for device in ("cam-1", "cam-2"):  # cam-1's goes first and is not printed
        config = ["--config", str(_config_file(tmp_path, mosquitto.port, device))]
        state = ["--state-dir", str(tmp_path / device)]
        assert edge.cli.main(["alerts", "test", "--count", "1", *state, *config]) == 0
    tail.join(15)
    assert result == [0]
    out += capsys.readouterr().out
    (line,) = [line for line in out.splitlines() if line.startswith("{")]
    assert json.loads(line)["device_id"] == "cam-2"


def test_alerts_tail_json_and_timeout(
    mosquitto: Mosquitto, capsys: pytest.CaptureFixture[str]
) -> None:
    code = edge.cli.main(
        [
            "alerts",
            "tail",
            "--json",
            "--count",
            "1",
            "--timeout",
            "0.3",
            "--broker",
            f"127.0.0.1:{mosquitto.port}",
        ]
    )
    assert code == 1
    assert "0/1 alerts before the timeout" in capsys.readouterr().err


def test_alerts_review_publishes_a_valid_decision(
    mosquitto: Mosquitto, capsys: pytest.CaptureFixture[str]
) -> None:
    from edge.alerts.schema import uuid7

    collector = Collector(mosquitto.port, "edge/v1/cam-9/review")
    alert_id = uuid7()
    try:
        code = edge.cli.main(
            [
                "alerts",
                "review",
                alert_id,
                "reject",
                "--device",
                "cam-9",
                "--by",
                "op-1",
                "--broker",
                f"127.0.0.1:{mosquitto.port}",
            ]
        )
        assert code == 0
        assert collector.wait_for(lambda c: len(c.messages) == 1, SHOULD_HAPPEN_S)
    finally:
        collector.close()
    review = Review.decode(collector.messages[0][1])
    assert (review.alert_id, review.decision, review.by) == (alert_id, "reject", "op-1")


def test_alerts_bench_reports_rates(
    mosquitto: Mosquitto, capsys: pytest.CaptureFixture[str]
) -> None:
    code = edge.cli.main(
        [
            "alerts",
            "bench",
            "--count",
            "50",
            "--json",
            "--no-fsync",
            "--broker",
            f"127.0.0.1:{mosquitto.port}",
        ]
    )
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["complete"] is True
    for phase in ("enqueue", "drain", "sustained"):
        assert report[phase]["per_s"] > 0
    assert report["sustained"]["received"] == 50


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["alerts", "tail", "--broker", "nonsense"], "expected HOST:PORT"),
        (["alerts", "tail", "--device", "a/b", "--broker", "127.0.0.1:1"], "not a valid device"),
        (["alerts", "tail", "--broker", "127.0.0.1:1"], "cannot connect to MQTT broker"),
    ],
)
def test_bad_input_is_a_one_line_error(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert edge.cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("edge: error: ") and message in err and err.count("\n") == 1


def test_broken_config_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "edge.yaml"
    path.write_text("mqtt:\n  protocol: '4'\n  passwrd: x\n")
    assert edge.cli.main(["outbox", "status", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "mqtt.protocol" in err and "mqtt.passwrd" in err and err.count("\n") == 1
