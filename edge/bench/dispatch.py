"""``edge bench dispatch``: how fast dispatch stores alerts, and how fast its alert list answers
with many stored.

1. Ingest: ``alerts`` synthetic alerts (10 devices, no crop) go through what the MQTT side does
   with a batch: decode, validate against the schema, commit (``batch`` per transaction).
2. Fill: more alerts until ``stored`` are in the database (not timed; committed in large
   batches without decoding and validating each, which is what made a million slow).
3. First page: ``repeats`` requests for the newest page of the list through the real web app
   (API ``/api/alerts?limit=50`` and the console's ``/``, with a bearer token), after a warm-up;
   p50 / p95 / max in milliseconds.

The database is whatever the command was given (a temporary SQLite file by default). The
measured object is passed in as a :class:`DispatchTarget`, wired by ``edge.cli.bench``.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol

from edge.alerts.schema import uuid7
from edge.clock import utc_rfc3339

DEVICES = 10


class DispatchTarget(Protocol):
    def ingest(self, payloads: Sequence[bytes]) -> None: ...

    def fill(self, alerts: Sequence[dict[str, Any]]) -> None:
        """Store already-valid alert documents (no decoding, no schema check)."""
        ...

    def count(self) -> int: ...

    def first_page(self, which: str) -> None: ...


def synthetic_alerts(count: int, start: int = 0) -> Iterator[bytes]:
    """Schema-valid alert payloads, as devices send them (without crops)."""
    for alert in synthetic_documents(count, start):
        yield json.dumps(alert, sort_keys=True, separators=(",", ":")).encode("utf-8")


def synthetic_documents(count: int, start: int = 0) -> Iterator[dict[str, Any]]:
    """Schema-valid alert documents (10 devices, 5,000 entries, no crop)."""
    stamp = utc_rfc3339()
    for n in range(start, start + count):
        yield {
            "schema": "edge.alert.v1",
            "alert_id": uuid7(),
            "device_id": f"bench-{n % DEVICES}",
            "event_time": stamp,
            "watchlist": {"id": "bench", "version": "1"},
            "entry": {"id": str(n % 5000), "label": f"Person {n % 5000}"},
            "score": 0.5 + (n % 100) / 1000,
            "threshold": 0.37,
            "quality": 0.8,
            "track_id": n,
            "model_id": "mobilefacenet-fp32",
            "location": {"name": f"Gate {n % DEVICES}"},
            "test": False,
        }


def _feed(target: DispatchTarget, count: int, batch: int, start: int) -> None:
    payloads = synthetic_alerts(count, start)
    while True:
        chunk = [p for _, p in zip(range(batch), payloads, strict=False)]
        if not chunk:
            return
        target.ingest(chunk)


def _latency(call: Callable[[], None], repeats: int) -> dict[str, float]:
    for _ in range(5):
        call()
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return {
        "p50_ms": round(statistics.median(samples), 2),
        "p95_ms": round(samples[min(len(samples) - 1, int(0.95 * len(samples)))], 2),
        "max_ms": round(samples[-1], 2),
    }


def run(
    target: DispatchTarget,
    *,
    alerts: int,
    stored: int,
    batch: int = 500,
    repeats: int = 200,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    say = progress or (lambda message: None)
    before = target.count()
    say(f"ingesting {alerts} alerts in batches of {batch}")
    started = time.perf_counter()
    _feed(target, alerts, batch, before)
    ingest_s = time.perf_counter() - started
    have = target.count()
    fill = max(0, stored - have)
    if fill:
        say(f"filling to {stored} stored alerts ({fill} more)")
        step = 20_000
        for offset in range(0, fill, step):
            target.fill(list(synthetic_documents(min(step, fill - offset), have + offset)))
            if (offset // step) % 10 == 9 or offset + step >= fill:
                say(f"  {have + min(offset + step, fill)} stored")
    total = target.count()
    say(f"timing the first page ({repeats} requests each) with {total} stored")
    return {
        "ingest": {
            "alerts": alerts,
            "seconds": round(ingest_s, 3),
            "per_s": round(alerts / ingest_s, 1) if ingest_s > 0 else None,
            "batch": batch,
        },
        "stored": total,
        "first_page_api": _latency(lambda: target.first_page("api"), repeats),
        "first_page_console": _latency(lambda: target.first_page("console"), repeats),
    }


def format_report(report: dict[str, Any], where: str) -> str:
    ingest = report["ingest"]
    lines = [
        f"dispatch bench on {where}",
        f"  ingest (decode, validate, commit; batch {ingest['batch']}): "
        f"{ingest['per_s']} alerts/s ({ingest['alerts']} in {ingest['seconds']} s)",
    ]
    for key, what in (("first_page_api", "GET /api/alerts"), ("first_page_console", "GET /")):
        r = report[key]
        lines.append(
            f"  first page, {report['stored']} stored, {what:<16} p50 {r['p50_ms']} ms, "
            f"p95 {r['p95_ms']} ms, max {r['max_ms']} ms"
        )
    return "\n".join(lines)
