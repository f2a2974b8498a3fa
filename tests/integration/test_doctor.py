"""`edge doctor`: every check runs on this machine, against a real broker; failures carry a fix."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from mqtt_fixtures import Mosquitto, free_port
from watchlist_helpers import make_keys

from edge.cli import main
from edge.cli.doctor import CHECKS
from edge.config import config_from_dict
from edge.services.doctor import FAIL, OK, SKIP, check_camera, check_clock, check_disk


def _config(tmp_path: Path, port: int, **extra: object) -> Path:
    data = {
        "mqtt": {"host": "127.0.0.1", "port": port, "connect_timeout_s": 2},
        **extra,
    }
    path = tmp_path / "edge.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _rows(capsys: pytest.CaptureFixture[str]) -> dict[str, dict[str, str]]:
    return {r["name"]: r for r in json.loads(capsys.readouterr().out)}


def test_doctor_checks_a_healthy_setup(
    tmp_path: Path, mosquitto: Mosquitto, capsys: pytest.CaptureFixture[str]
) -> None:
    _, _, _, pub = make_keys(tmp_path)
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"\0")
    config = _config(
        tmp_path,
        mosquitto.port,
        watchlist={"public_key": str(pub)},
        capture={"source": str(video)},
        outbox={"max_bytes": 1 << 20},
    )
    main(["doctor", "--config", str(config), "--state-dir", str(tmp_path / "state"), "--json"])
    rows = _rows(capsys)
    assert list(rows) == list(CHECKS)
    for name in ("cores", "memory", "camera", "models", "broker", "disk", "watchlist-key"):
        assert rows[name]["result"] == OK, rows[name]
    assert rows["backend"]["result"] in (OK, "warn") and "ms per face" in rows["backend"]["detail"]
    assert rows["cpu"]["result"] in (OK, "warn")
    assert rows["clock"]["result"] in (OK, "warn")  # a container may not tell whether NTP runs


def test_doctor_prints_a_fix_for_each_failure_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(
        tmp_path,
        free_port(),  # nothing listens there
        watchlist={"public_key": str(tmp_path / "missing.pub")},
        capture={"source": "/dev/video97"},
    )
    code = main(["doctor", "--config", str(config), "--skip", "backend", "--skip", "models"])
    out = capsys.readouterr().out
    assert code == 1
    lines = {line.split()[0]: line for line in out.splitlines()[1:-1]}
    assert "FAIL" in lines["broker"] and "is the broker running" in lines["broker"]
    assert "check mqtt.host/port" in lines["broker"]
    assert "FAIL" in lines["camera"] and "fix capture.source" in lines["camera"]
    assert "SKIP" in lines["backend"]
    assert out.splitlines()[0].split() == ["CHECK", "RESULT", "DETAIL", "FIX"]
    assert "failed" in out.splitlines()[-1]
    assert main(["doctor", "--skip", "nope"]) == 2
    assert "checks are" in capsys.readouterr().err


def test_clock_camera_and_disk_checks_say_what_to_do(tmp_path: Path) -> None:
    config = config_from_dict({"capture": {"source": f"rtsp://user:pw@127.0.0.1:{free_port()}/s"}})
    camera = check_camera(config)
    assert camera.result == FAIL and "pw" not in camera.detail and "user" not in camera.detail
    never_set = check_clock(config, now=lambda: datetime(1970, 1, 1, tzinfo=UTC))
    assert never_set.result == FAIL and "timesyncd" in never_set.fix
    big = config_from_dict({"outbox": {"max_bytes": 1 << 60}})
    disk = check_disk(big, tmp_path)
    assert disk.result == "warn" and "outbox.max_bytes" in disk.fix
    assert SKIP == "skip"
