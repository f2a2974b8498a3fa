"""The local API served live by `edge sync`, against a real Mosquitto."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import httpx
import pytest
from api_helpers import AUTH, TOKEN, metric_families
from deadlines import SHOULD_HAPPEN_S
from fastapi.testclient import TestClient
from fleet_helpers import device_config
from mqtt_fixtures import Mosquitto, free_port
from watchlist_helpers import make_keys

from edge.api.app import create_app
from edge.clock import format_time, utc_now
from edge.config import load_config
from edge.mqtt.oneshot import connect_and_wait, tool_client
from edge.services.agent import Agent


def test_edge_sync_serves_the_api_live(
    tmp_path: Path, mosquitto: Mosquitto, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EDGE_API_TOKEN", TOKEN)
    _, _, _, pub_path = make_keys(tmp_path)
    port = free_port()
    config = load_config(
        device_config(tmp_path / "cam.yaml", "cam-live", mosquitto.port, pub_path, api_port=port)
    )
    agent = Agent(config, state_dir=tmp_path / "state", agent=True)
    agent.start()
    try:
        assert agent.sync.wait_connected(SHOULD_HAPPEN_S)
        base = f"http://127.0.0.1:{port}"
        health = httpx.get(f"{base}/health", timeout=5)
        assert health.status_code == 503  # nothing installed yet
        assert httpx.get(f"{base}/health?probe=live", timeout=5).status_code == 200
        assert httpx.get(f"{base}/status", timeout=5).status_code == 401
        status = httpx.get(f"{base}/status", headers=AUTH, timeout=5).json()
        assert status["device_id"] == "cam-live" and status["sync"]["connected"] is True
        metrics = httpx.get(f"{base}/metrics", headers=AUTH, timeout=5).text
        assert "edge_mqtt_connected" in metric_families(metrics)
    finally:
        agent.stop()


def test_an_empty_api_token_fails_closed_with_one_warning(
    tmp_path: Path,
    mosquitto: Mosquitto,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """`EDGE_API_TOKEN=` is no token (docs/fleet.md): 503 on protected endpoints, and one
    warning at start that says so."""
    monkeypatch.setenv("EDGE_API_TOKEN", "")
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    caplog.set_level(logging.WARNING, logger="edge.services.agent")
    _, _, _, pub_path = make_keys(tmp_path)
    port = free_port()
    config = load_config(
        device_config(tmp_path / "cam.yaml", "cam-empty", mosquitto.port, pub_path, api_port=port)
    )
    agent = Agent(config, state_dir=tmp_path / "state", serve_api=True)
    agent.start()
    try:
        base = f"http://127.0.0.1:{port}"
        for headers in ({}, AUTH):
            assert httpx.get(f"{base}/metrics", headers=headers, timeout=5).status_code == 503
        assert httpx.get(f"{base}/health?probe=live", timeout=5).status_code == 200
    finally:
        agent.stop()
    warnings = [r.getMessage() for r in caplog.records if "API token" in r.getMessage()]
    assert len(warnings) == 1 and "empty" in warnings[0] and "/health" in warnings[0]


def test_edge_sync_reports_the_recognizers_numbers_from_its_heartbeat(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    """Beside `edge run`, /metrics shows the recognizer's fps, latencies, drops and alerts, read
    from its retained heartbeat; a stale heartbeat is left out and warned about."""
    _, _, _, pub_path = make_keys(tmp_path)
    config = load_config(device_config(tmp_path / "cam.yaml", "cam-hb", mosquitto.port, pub_path))

    def heartbeat(when: str) -> None:
        document = {
            "device_id": "cam-hb",
            "time": when,
            "pipeline": {
                "fps": 10.0,
                "fps_now": 12.5,
                "frames": {"processed": 500, "dropped": 4, "skipped": 0, "discarded_at_stop": 0},
                "alerts": {"raised": 2, "suppressed_by_cooldown": 1, "failed": 0},
                "latency_ms": {"detect": {"count": 500, "mean_ms": 8.0, "p90_ms": 11.0}},
                "queues": {"frames": 1, "alerts": 0},
            },
        }
        client = tool_client(config.mqtt, "recognizer")
        connect_and_wait(client, config.mqtt)
        client.publish(
            "edge/v1/cam-hb/heartbeat", json.dumps(document), qos=1, retain=True
        ).wait_for_publish(5)
        client.disconnect()
        client.loop_stop()

    heartbeat(format_time(utc_now()))
    agent = Agent(config, state_dir=tmp_path / "state", serve_api=False)
    agent.start()
    try:
        assert agent.sync.wait_connected(SHOULD_HAPPEN_S)
        client = TestClient(create_app(agent.provider, token=TOKEN))
        deadline = 50
        while agent.sync.heartbeat is None and deadline:
            time.sleep(0.1)
            deadline -= 1
        families = metric_families(client.get("/metrics", headers=AUTH).text)
        assert families["edge_fps"].samples[0].value == 12.5
        dropped = {s.labels["reason"]: s.value for s in families["edge_frames_dropped"].samples}
        assert dropped["queue_full"] == 4
        assert families["edge_alerts"].samples[0].value == 2
        p90 = families["edge_stage_latency_seconds"].samples[0]
        assert p90.labels["stage"] == "detect" and p90.value == pytest.approx(0.011)
        status = client.get("/status", headers=AUTH).json()
        assert status["queues"] == {"frames": 1, "alerts": 0}

        heartbeat("2020-01-01T00:00:00Z")  # the recognizer went quiet long ago
        time.sleep(0.5)
        assert "edge_fps" not in metric_families(client.get("/metrics", headers=AUTH).text)
        warnings = client.get("/health").json()["warnings"]
        assert any("no recent heartbeat from the recognizer" in w for w in warnings)
    finally:
        agent.stop()


def _short_run(config: Path, state_dir: Path, *extra: str) -> None:
    from video_helpers import DEMO_CLIP, DEMO_PUBLIC_KEY, DEMO_WATCHLIST

    from edge.cli import main

    args = ["run", "--source", str(DEMO_CLIP), "--watchlist", str(DEMO_WATCHLIST)]
    args += ["--pubkey", str(DEMO_PUBLIC_KEY), "--config", str(config)]
    args += ["--state-dir", str(state_dir), "--max-frames", "40", "--no-status", *extra]
    assert main(args) == 0


def _run_numbers(agent: Agent) -> dict[str, float]:
    families = metric_families(
        TestClient(create_app(agent.provider, token=TOKEN)).get("/metrics", headers=AUTH).text
    )
    return {
        name: families[name].samples[0].value
        for name in ("edge_frames_processed", "edge_alerts", "edge_fps")
        if name in families
    }


def test_metrics_after_a_short_run_come_from_its_final_heartbeat(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    """A run shorter than a heartbeat period: its heartbeat at shutdown carries the final
    numbers, so `edge sync` (here with another state directory: the broker is all it has)
    reports them instead of the start's zeros."""
    _, _, _, pub_path = make_keys(tmp_path)
    path = device_config(tmp_path / "cam.yaml", "cam-short", mosquitto.port, pub_path)
    _short_run(path, tmp_path / "run-state", "--broker", f"127.0.0.1:{mosquitto.port}")
    agent = Agent(load_config(path), state_dir=tmp_path / "sync-state", serve_api=False)
    agent.start()
    try:
        assert agent.sync.wait_connected(SHOULD_HAPPEN_S)
        for _ in range(50):
            if agent.sync.heartbeat is not None:
                break
            time.sleep(0.1)
        numbers = _run_numbers(agent)
    finally:
        agent.stop()
    assert numbers["edge_frames_processed"] == 40 and numbers["edge_alerts"] == 1
    assert numbers["edge_fps"] > 0


def test_metrics_after_a_short_run_without_a_broker(tmp_path: Path) -> None:
    """No broker at all: `edge sync` reads the run's numbers from run-metrics.json in the
    shared state directory."""
    _, _, _, pub_path = make_keys(tmp_path)
    path = device_config(tmp_path / "cam.yaml", "cam-alone", free_port(), pub_path)
    state = tmp_path / "state"
    _short_run(path, state, "--no-publish")
    document = json.loads((state / "run-metrics.json").read_text())
    assert document["running"] is False and document["pipeline"]["frames"]["processed"] == 40
    agent = Agent(load_config(path), state_dir=state, serve_api=False)
    agent.start()
    try:
        numbers = _run_numbers(agent)
        warnings = TestClient(create_app(agent.provider, token=TOKEN)).get("/health").json()
    finally:
        agent.stop()
    assert numbers["edge_frames_processed"] == 40 and numbers["edge_alerts"] == 1
    assert not any("recognizer" in w for w in warnings["warnings"])
