"""Latency of the stages of a run: count, mean over the whole run, p90 over recent samples.

Each :class:`StageStats` is written by one thread and read (for the status line, the heartbeat
and the end-of-run report) by others, so updates and snapshots take a small lock.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

import numpy as np

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
