"""The local HTTP API: ``create_app(provider, token=...)``.

- ``/health`` (open unless ``api.open_health`` is false): liveness and readiness with reasons;
  503 when not ready (``?probe=live``: 503 only when not live).
- ``/status`` (bearer token): versions, watchlist, uptime, queue depths, outbox, sync, MQTT.
- ``/metrics`` (bearer token): Prometheus text format, rendered by ``prometheus_client``.
- ``/watchlist`` (bearer token): the installed list's metadata, never entries or embeddings.
- ``/openapi.json``, ``/docs`` (open): the API description.

Everything the endpoints report comes from a :class:`RuntimeProvider`, so the app is tested
with a fake and served by whichever process owns the runtime (``edge sync`` today).
"""

from __future__ import annotations

import hmac
import logging
import math
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, Protocol

from fastapi import Depends, FastAPI, HTTPException, Query, Request, status
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from pydantic import BaseModel, Field

from edge import __version__

log = logging.getLogger(__name__)

TOKEN_SECRET = "api_token"
_BEARER = HTTPBearer(auto_error=False, description="The api_token credential.")


# --- what a provider gives ------------------------------------------------------------------------


@dataclass(frozen=True)
class HealthReport:
    """``live``: the process works (its threads run). ``ready``: it does its job; ``reasons``
    say why not. ``warnings`` are degraded states that do not make it unready (e.g. the broker
    is unreachable: alerts wait in the outbox)."""

    live: bool
    ready: bool
    reasons: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class StageLatency:
    count: int
    mean_s: float | None
    p90_s: float | None


@dataclass(frozen=True)
class MetricsSnapshot:
    """Numbers for ``/metrics``. ``None`` means "not known in this process" and is left out."""

    device_id: str
    model: str | None = None
    uptime_s: float = 0.0
    ready: bool = False
    fps: float | None = None
    frames_processed: int | None = None
    frames_dropped: Mapping[str, int] = field(default_factory=dict)  # reason -> frames
    latency: Mapping[str, StageLatency] = field(default_factory=dict)  # stage -> latency
    alerts_raised: int | None = None
    alerts_failed: int | None = None
    outbox_depth: int | None = None
    outbox_bytes: int | None = None
    outbox_oldest_age_s: float | None = None
    queues: Mapping[str, int] = field(default_factory=dict)
    mqtt_connected: Mapping[str, bool] = field(default_factory=dict)  # client -> connected
    watchlist_id: str | None = None
    watchlist_version: int | None = None
    watchlist_entries: int | None = None
    watchlist_templates: int | None = None
    watchlist_valid_until_s: float | None = None  # unix time
    sync_counters: Mapping[str, int] = field(default_factory=dict)


class RuntimeProvider(Protocol):
    """What the API reads; every method must return quickly (it runs per request)."""

    def health(self) -> HealthReport: ...

    def status(self) -> Mapping[str, Any]: ...

    def metrics(self) -> MetricsSnapshot: ...

    def watchlist(self) -> Mapping[str, Any] | None: ...


# --- response models (for OpenAPI) ----------------------------------------------------------------


class HealthOut(BaseModel):
    live: bool = Field(description="The process and its worker threads run.")
    ready: bool = Field(description="The device does its job (see reasons when false).")
    reasons: list[str] = Field(description="Why it is not live or not ready.")
    warnings: list[str] = Field(description="Degraded, but still ready.")


class WatchlistOut(BaseModel):
    installed: bool = Field(description="A verified list is installed.")
    list: dict[str, Any] | None = Field(
        None, description="Its metadata (manifest fields, state, threshold policy); no entries."
    )


# --- metrics --------------------------------------------------------------------------------------


def _metric_name(text: str) -> str:
    return "".join(c if c.isalnum() or c == "_" else "_" for c in text).strip("_").lower()


def _by_label(
    family: type[GaugeMetricFamily] | type[CounterMetricFamily],
    name: str,
    documentation: str,
    label: str,
    values: Mapping[str, float],
) -> Metric:
    """One family with a sample per key of ``values`` (sorted), labelled ``label``."""
    metric = family(name, documentation, labels=[label])
    for key, value in sorted(values.items()):
        metric.add_metric([key], float(value))
    return metric


class SnapshotCollector(Collector):
    """Turns one :class:`MetricsSnapshot` per scrape into Prometheus metric families."""

    def __init__(self, provider: RuntimeProvider) -> None:
        self.provider = provider

    def collect(self) -> Iterator[Metric]:
        m = self.provider.metrics()
        yield from _process_metrics(m)
        yield from _latency_metrics(m)
        yield from _alert_and_gauge_metrics(m)
        yield from _labelled_metrics(m)


def _process_metrics(m: MetricsSnapshot) -> Iterator[Metric]:
    """Who the device is, how long it has run, whether it is ready, and frames through it."""
    info = InfoMetricFamily("edge", "Software and model of this device.", labels=["device"])
    info.add_metric([m.device_id], {"software": __version__, "model": m.model or ""})
    yield info
    yield GaugeMetricFamily("edge_uptime_seconds", "Seconds since start.", value=m.uptime_s)
    yield GaugeMetricFamily("edge_ready", "1 when /health says ready.", value=float(m.ready))
    if m.fps is not None:
        yield GaugeMetricFamily("edge_fps", "Frames processed per second.", value=m.fps)
    if m.frames_processed is not None:
        yield CounterMetricFamily(
            "edge_frames_processed", "Frames through inference.", value=m.frames_processed
        )
    if m.frames_dropped:
        yield _by_label(
            CounterMetricFamily,
            "edge_frames_dropped",
            "Frames not processed, by reason.",
            "reason",
            m.frames_dropped,
        )


def _latency_metrics(m: MetricsSnapshot) -> Iterator[Metric]:
    """Per stage: mean and 90th-percentile latency, and how many samples were timed."""
    if not m.latency:
        return
    mean = GaugeMetricFamily(
        "edge_stage_latency_mean_seconds", "Mean latency per stage.", labels=["stage"]
    )
    p90 = GaugeMetricFamily(
        "edge_stage_latency_seconds",
        "Latency quantile per stage (recent samples).",
        labels=["stage", "quantile"],
    )
    samples = CounterMetricFamily(
        "edge_stage_samples", "Samples timed per stage.", labels=["stage"]
    )
    for stage, lat in sorted(m.latency.items()):
        samples.add_metric([stage], lat.count)
        if lat.mean_s is not None:
            mean.add_metric([stage], lat.mean_s)
        if lat.p90_s is not None:
            p90.add_metric([stage, "0.9"], lat.p90_s)
    yield mean
    yield p90
    yield samples


def _alert_and_gauge_metrics(m: MetricsSnapshot) -> Iterator[Metric]:
    """Alerts raised and failed, then the outbox and watchlist gauges that are known."""
    if m.alerts_raised is not None:
        yield CounterMetricFamily("edge_alerts", "Alerts raised.", value=m.alerts_raised)
    if m.alerts_failed is not None:
        yield CounterMetricFamily(
            "edge_alerts_failed", "Alerts that could not be stored.", value=m.alerts_failed
        )
    for name, value, doc in (
        ("edge_outbox_depth", m.outbox_depth, "Alerts waiting for the broker's ack."),
        ("edge_outbox_bytes", m.outbox_bytes, "Payload bytes waiting in the outbox."),
        (
            "edge_outbox_oldest_age_seconds",
            m.outbox_oldest_age_s,
            "Age of the oldest waiting alert.",
        ),
        ("edge_watchlist_entries", m.watchlist_entries, "Entries of the installed list."),
        ("edge_watchlist_templates", m.watchlist_templates, "Templates of the list."),
        (
            "edge_watchlist_valid_until_timestamp_seconds",
            m.watchlist_valid_until_s,
            "When the installed list expires (unix time).",
        ),
    ):
        if value is not None and math.isfinite(float(value)):
            yield GaugeMetricFamily(name, doc, value=float(value))


def _labelled_metrics(m: MetricsSnapshot) -> Iterator[Metric]:
    """Queue depths, MQTT clients, the installed list's version and the sync counters."""
    if m.queues:
        yield _by_label(GaugeMetricFamily, "edge_queue_depth", "Items waiting.", "queue", m.queues)
    if m.mqtt_connected:
        yield _by_label(
            GaugeMetricFamily,
            "edge_mqtt_connected",
            "1 while the client is connected.",
            "client",
            {client: float(up) for client, up in m.mqtt_connected.items()},
        )
    if m.watchlist_id is not None and m.watchlist_version is not None:
        yield _by_label(
            GaugeMetricFamily,
            "edge_watchlist_version",
            "Version of the installed list.",
            "list_id",
            {m.watchlist_id: m.watchlist_version},
        )
    for name, count in sorted(m.sync_counters.items()):
        yield CounterMetricFamily(
            f"edge_sync_{_metric_name(name)}", f"Watchlist sync: {name}.", value=count
        )


def render_metrics(provider: RuntimeProvider) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SnapshotCollector(provider))
    return generate_latest(registry)


# --- the app --------------------------------------------------------------------------------------


def create_app(
    provider: RuntimeProvider, *, token: str | None, open_health: bool = True
) -> FastAPI:
    """The API for one device. ``token`` is the bearer token every protected endpoint needs;
    without one (``None``, empty or blank) those endpoints answer 503 (fail closed)."""
    if token is not None and not token.strip():
        token = None
    app = FastAPI(
        title="edge device API",
        version=__version__,
        description="Local health, status, metrics and watchlist metadata of one edge device.",
    )

    def authorized(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)],
    ) -> None:
        if token is None:
            raise HTTPException(
                status.HTTP_503_SERVICE_UNAVAILABLE,
                "no API token configured (systemd credential api_token or EDGE_API_TOKEN)",
            )
        if credentials is None or not hmac.compare_digest(
            credentials.credentials.encode("utf-8"), token.encode("utf-8")
        ):
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                "missing or wrong bearer token",
                headers={"WWW-Authenticate": "Bearer"},
            )

    health_deps = [] if open_health else [Depends(authorized)]
    protected = [Depends(authorized)]

    @app.get(
        "/health",
        response_model=HealthOut,
        dependencies=health_deps,
        responses={503: {"model": HealthOut, "description": "not ready (or not live)"}},
        summary="Liveness and readiness",
    )
    def health(
        probe: Annotated[Literal["ready", "live"], Query(description="which check")] = "ready",
    ) -> JSONResponse:
        report = provider.health()
        ok = report.live and (report.ready or probe == "live")
        body = HealthOut(
            live=report.live,
            ready=report.ready,
            reasons=list(report.reasons),
            warnings=list(report.warnings),
        )
        return JSONResponse(body.model_dump(), status_code=200 if ok else 503)

    @app.get("/status", dependencies=protected, summary="Versions, watchlist, uptime, queues")
    def status_(request: Request) -> dict[str, Any]:
        return dict(provider.status())

    @app.get(
        "/metrics",
        dependencies=protected,
        response_class=Response,
        summary="Prometheus metrics",
        responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}},
    )
    def metrics() -> Response:
        return Response(render_metrics(provider), media_type=CONTENT_TYPE_LATEST)

    @app.get(
        "/watchlist",
        dependencies=protected,
        response_model=WatchlistOut,
        summary="The installed list's metadata (no entries, no embeddings)",
    )
    def watchlist() -> WatchlistOut:
        meta = provider.watchlist()
        return WatchlistOut(installed=meta is not None, list=None if meta is None else dict(meta))

    return app


class ApiServer:
    """uvicorn on a background thread (no signal handlers: the owner handles signals)."""

    def __init__(self, app: FastAPI, host: str, port: int) -> None:
        import uvicorn

        self.config = uvicorn.Config(
            app, host=host, port=port, log_level="warning", access_log=False, lifespan="off"
        )
        self.server = uvicorn.Server(self.config)
        self.host, self.port = host, port
        self._thread: threading.Thread | None = None

    def start(self, timeout_s: float = 10.0) -> None:
        from edge.errors import EdgeError

        self._thread = threading.Thread(target=self.server.run, name="api", daemon=True)
        self._thread.start()
        deadline = threading.Event()
        waited = 0.0
        while not self.server.started and waited < timeout_s:
            if not self._thread.is_alive():
                raise EdgeError(
                    f"the local API could not listen on {self.host}:{self.port} (in use?)"
                )
            deadline.wait(0.02)
            waited += 0.02
        if not self.server.started:
            raise EdgeError(f"the local API did not start on {self.host}:{self.port}")
        log.info("local API on http://%s:%d (OpenAPI at /docs)", self.host, self.port)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self, timeout_s: float = 5.0) -> None:
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None
