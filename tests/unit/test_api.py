"""The local API: the real FastAPI app through TestClient (with a fake provider, and with the
device's real provider over a real installed list), and once served live by ``edge sync``."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from api_helpers import AUTH, TOKEN, metric_families
from fastapi.testclient import TestClient
from fleet_helpers import LIST_ID, device_config, full_bundle
from mqtt_fixtures import free_port
from watchlist_helpers import make_keys, people

from edge.alerts.outbox import Outbox
from edge.api.app import HealthReport, MetricsSnapshot, StageLatency, create_app
from edge.config import load_config
from edge.fleet.sync import WatchlistSync
from edge.services.agent import DeviceProvider, pipeline_fields
from edge.watchlist.install import open_store


class FakeProvider:
    def __init__(self) -> None:
        self.ready = True

    def health(self) -> HealthReport:
        if self.ready:
            return HealthReport(live=True, ready=True, warnings=["broker unreachable"])
        return HealthReport(live=True, ready=False, reasons=["no watchlist installed"])

    def status(self) -> Mapping[str, Any]:
        return {"device_id": "cam-1", "software": "0.1.0", "queues": {"frames": 2}}

    def metrics(self) -> MetricsSnapshot:
        return MetricsSnapshot(
            device_id="cam-1",
            model="mobilefacenet-fp32",
            uptime_s=12.5,
            ready=self.ready,
            fps=14.2,
            frames_processed=1000,
            frames_dropped={"queue_full": 7, "rate_cap": 0},
            latency={
                "detect": StageLatency(1000, 0.0081, 0.0102),
                "embed": StageLatency(0, None, None),
            },
            alerts_raised=3,
            alerts_failed=0,
            outbox_depth=2,
            outbox_bytes=4096,
            outbox_oldest_age_s=1.5,
            queues={"frames": 2, "alerts": 0},
            mqtt_connected={"alerts": True, "sync": False},
            watchlist_id="gate",
            watchlist_version=7,
            watchlist_entries=120,
            sync_counters={"chunks_received": 40, "installs": 2},
        )

    def watchlist(self) -> Mapping[str, Any] | None:
        return {"list_id": "gate", "version": 7, "state": "active"}


def test_health_is_open_and_says_why_it_is_not_ready() -> None:
    provider = FakeProvider()
    client = TestClient(create_app(provider, token=TOKEN))
    ok = client.get("/health")
    assert ok.status_code == 200
    assert ok.json() == {
        "live": True,
        "ready": True,
        "reasons": [],
        "warnings": ["broker unreachable"],
    }
    provider.ready = False
    not_ready = client.get("/health")
    assert not_ready.status_code == 503
    assert not_ready.json()["reasons"] == ["no watchlist installed"]
    assert client.get("/health", params={"probe": "live"}).status_code == 200
    closed = TestClient(create_app(provider, token=TOKEN, open_health=False))
    assert closed.get("/health").status_code == 401
    assert closed.get("/health", headers=AUTH, params={"probe": "live"}).status_code == 200


@pytest.mark.parametrize("path", ["/status", "/metrics", "/watchlist"])
def test_everything_else_needs_the_bearer_token(path: str) -> None:
    client = TestClient(create_app(FakeProvider(), token=TOKEN))
    assert client.get(path).status_code == 401
    assert client.get(path).headers["www-authenticate"] == "Bearer"
    assert client.get(path, headers={"Authorization": "Bearer nope"}).status_code == 401
    assert client.get(path, headers=AUTH).status_code == 200
    # No token configured: fail closed, and say where the token comes from.
    unset = TestClient(create_app(FakeProvider(), token=None))
    refused = unset.get(path, headers=AUTH)
    assert refused.status_code == 503 and "api_token" in refused.json()["detail"]


@pytest.mark.parametrize("blank", ["", "  ", "\n"])
def test_an_empty_token_counts_as_none(blank: str) -> None:
    """`EDGE_API_TOKEN=` (or an empty credential file) is no token: 503, never 401 for all."""
    client = TestClient(create_app(FakeProvider(), token=blank))
    for headers in ({}, AUTH, {"Authorization": "Bearer "}):
        refused = client.get("/status", headers=headers)
        assert refused.status_code == 503 and "api_token" in refused.json()["detail"]
    assert client.get("/health").status_code == 200


def test_metrics_are_valid_prometheus_text() -> None:
    client = TestClient(create_app(FakeProvider(), token=TOKEN))
    response = client.get("/metrics", headers=AUTH)
    assert response.headers["content-type"].startswith("text/plain; version=")
    families = metric_families(response.text)
    assert families["edge_fps"].samples[0].value == pytest.approx(14.2)
    dropped = {s.labels["reason"]: s.value for s in families["edge_frames_dropped"].samples}
    assert dropped == {"queue_full": 7, "rate_cap": 0}
    assert families["edge_frames_dropped"].type == "counter"
    p90 = families["edge_stage_latency_seconds"].samples
    assert [(s.labels, s.value) for s in p90] == [({"stage": "detect", "quantile": "0.9"}, 0.0102)]
    assert families["edge_alerts"].samples[0].value == 3
    assert families["edge_outbox_depth"].samples[0].value == 2
    version = families["edge_watchlist_version"].samples[0]
    assert version.labels == {"list_id": "gate"} and version.value == 7
    connected = {s.labels["client"]: s.value for s in families["edge_mqtt_connected"].samples}
    assert connected == {"alerts": 1.0, "sync": 0.0}
    assert families["edge_sync_chunks_received"].samples[0].value == 40
    assert families["edge_info"].samples[0].labels["model"] == "mobilefacenet-fp32"


def test_openapi_describes_every_endpoint() -> None:
    client = TestClient(create_app(FakeProvider(), token=TOKEN))
    spec = client.get("/openapi.json").json()
    assert {"/health", "/status", "/metrics", "/watchlist"} <= set(spec["paths"])
    assert "HTTPBearer" in spec["components"]["securitySchemes"]
    assert client.get("/docs").status_code == 200


def test_device_provider_reports_the_real_installed_list(tmp_path: Path) -> None:
    private_key, _, _, pub_path = make_keys(tmp_path)
    bundle = tmp_path / "v3"
    full_bundle(bundle, people(21, 6), private_key, version=3)
    config = load_config(device_config(tmp_path / "cam.yaml", "cam-api", free_port(), pub_path))
    state = tmp_path / "state"
    store = open_store(config, state_dir=state)
    provider = DeviceProvider(
        config,
        store,
        state,
        sync=WatchlistSync(config, store, state),  # not started: shows "not connected"
        outbox=Outbox(state / "outbox.db"),
        pipeline=lambda: {
            "fps": 11.0,
            "frames": {"processed": 50, "dropped": 2, "skipped": 0, "discarded_at_stop": 0},
            "alerts": {"raised": 1, "failed": 0},
            "latency_ms": {"embed": {"count": 5, "mean_ms": 9.5, "p90_ms": 12.0}},
            "queues": {"frames": 1},
        },
    )
    client = TestClient(create_app(provider, token=TOKEN))
    health = client.get("/health")
    assert health.status_code == 503 and "no watchlist installed" in health.json()["reasons"][0]
    store.install(bundle)
    health = client.get("/health").json()
    assert health["ready"] is True and "not connected" in health["warnings"][0]

    listing = client.get("/watchlist", headers=AUTH).json()
    assert listing["installed"] is True
    meta = listing["list"]
    assert (meta["list_id"], meta["version"], meta["state"]) == (LIST_ID, 3, "active")
    assert meta["counts"] == {"entries": 6, "templates": 12}
    text = str(listing)
    for secret in ("entries.json", "person-0000", "vectors", 'embedding": ['):
        if secret == "entries.json":
            continue  # the file name is listed with its sha256, its content never
        assert secret not in text

    status = client.get("/status", headers=AUTH).json()
    assert status["watchlist"] == {"id": LIST_ID, "version": 3}
    assert status["outbox"]["depth"] == 0 and status["queues"] == {"frames": 1}
    assert status["sync"]["connected"] is False

    families = metric_families(client.get("/metrics", headers=AUTH).text)
    assert families["edge_watchlist_version"].samples[0].value == 3
    assert families["edge_watchlist_entries"].samples[0].value == 6
    assert families["edge_fps"].samples[0].value == 11.0
    assert families["edge_ready"].samples[0].value == 1.0
    assert families["edge_sync_installs"].type == "counter"


def test_pipeline_fields_map_edge_run_metrics() -> None:
    fields = pipeline_fields(
        {
            "fps": 9.5,
            "frames": {"processed": 10, "dropped": 3, "skipped": 4, "discarded_at_stop": 0},
            "alerts": {"raised": 2, "failed": 1},
            "latency_ms": {"detect": {"count": 0, "mean_ms": None, "p90_ms": None}},
        }
    )
    assert fields["frames_dropped"] == {"queue_full": 3, "rate_cap": 4, "stopped": 0}
    assert fields["latency"]["detect"] == StageLatency(0, None, None)
    assert (fields["alerts_raised"], fields["alerts_failed"]) == (2, 1)
