"""Latency of the stages of a run: count, mean over the whole run, p90 over recent samples.

Each :class:`StageStats` is written by one thread and read (for the status line, the heartbeat
and the end-of-run report) by others, so updates and snapshots take a small lock.

A run also keeps its current numbers in a small file (``<state_dir>/run-metrics.json``,
:func:`write_run_metrics`), which ``edge sync``'s local API reads (:func:`read_run_metrics`): the
recognizer's numbers reach it without a broker.
"""

from __future__ import annotations

import json
import os
import threading
from collections import deque
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from edge.clock import parse_time, utc_now, utc_rfc3339
from edge.errors import TimeFormatError

RECENT_SAMPLES = 4096  # p90 over the last this many samples (a few minutes of video)


class StageStats:
    """Durations of one stage, in milliseconds."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._lock = threading.Lock()
        self._count = 0
        self._total_ms = 0.0
        self._recent: deque[float] = deque(maxlen=RECENT_SAMPLES)

    def add(self, ms: float) -> None:
        with self._lock:
            self._count += 1
            self._total_ms += ms
            self._recent.append(ms)

    @property
    def count(self) -> int:
        return self._count

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            count, total, recent = self._count, self._total_ms, list(self._recent)
        if not count:
            return {"count": 0, "mean_ms": None, "p90_ms": None}
        return {
            "count": count,
            "mean_ms": round(total / count, 2),
            "p90_ms": round(float(np.percentile(recent, 90)), 2),
        }


class StageSet:
    """The named stages of a run, created on first use, reported in creation order."""

    def __init__(self, *names: str) -> None:
        self._lock = threading.Lock()
        self._stages: dict[str, StageStats] = {name: StageStats(name) for name in names}

    def __getitem__(self, name: str) -> StageStats:
        with self._lock:
            stage = self._stages.get(name)
            if stage is None:
                stage = self._stages[name] = StageStats(name)
            return stage

    def snapshot(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            stages = list(self._stages.values())
        return {stage.name: stage.snapshot() for stage in stages}


RUN_METRICS_FORMAT = "edge-run-metrics/1"


def write_run_metrics(path: Path, pipeline: Mapping[str, Any], *, running: bool) -> None:
    """Replace ``path`` atomically with the run's numbers (``pipeline``, as in the heartbeat),
    stamped with the time; raises ``OSError``."""
    document = {
        "format": RUN_METRICS_FORMAT,
        "time": utc_rfc3339(),
        "pid": os.getpid(),
        "running": running,
        "pipeline": pipeline,
    }
    staged = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    staged.write_text(json.dumps(document, sort_keys=True, default=str), encoding="utf-8")
    os.replace(staged, path)


def read_run_metrics(path: Path, max_age_s: float) -> tuple[dict[str, Any] | None, float | None]:
    """The ``pipeline`` numbers of ``path`` if written at most ``max_age_s`` ago (by its own time
    stamp), and their age; (None, age or None) when missing, unreadable or stale."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        age = (utc_now() - parse_time(str(document["time"]))).total_seconds()
    except (OSError, ValueError, KeyError, TypeError, TimeFormatError):
        return None, None
    pipeline = document.get("pipeline")
    if document.get("format") != RUN_METRICS_FORMAT or not isinstance(pipeline, dict):
        return None, None
    if age > max_age_s:
        return None, age
    return pipeline, age
