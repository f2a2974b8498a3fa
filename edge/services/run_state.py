"""What one ``edge run`` is and what it has done so far, shared by the run's jobs: the threads'
work (:mod:`edge.services.recognizer`), the main thread (:mod:`edge.services.supervision`) and
the numbers and the console (:mod:`edge.services.reporting`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge.pipeline.capture import Capture
from edge.pipeline.frames import FrameProcessor
from edge.pipeline.handoff import FrameQueue
from edge.pipeline.metrics import StageSet
from edge.pipeline.source import SourceSpec
from edge.watchlist.matcher import Watchlist


@dataclass
class RunOptions:
    """What one ``edge run`` does, beyond the config file."""

    source: SourceSpec
    state_dir: Path | None = None
    alerts_jsonl: Path | None = None
    annotate: Path | None = None
    overwrite_annotate: bool = False  # --force: replace an existing --annotate file
    metrics_json: Path | None = None
    max_frames: int | None = None
    duration_s: float | None = None
    publish: bool = True
    test_alerts: bool = False  # mark alerts as tests (the demo's are not real sightings)
    status_line: bool = True
    # Called every few seconds; returns a newly installed watchlist to switch to, or None.
    reload_watchlist: Callable[[], Watchlist | None] | None = None


@dataclass(frozen=True)
class AlertRecord:
    """An alert this run committed, with where in the source it came from."""

    alert_id: str
    entry_id: int
    label: str
    score: float
    quality: float
    track_id: int
    frame: int
    source_time_s: float
    event_time: str
    votes: int


@dataclass(frozen=True)
class RunParts:
    """The run's pipeline: capture -> frame queue -> frame processor, and the stage timings."""

    capture: Capture
    frames: FrameQueue
    processor: FrameProcessor
    stages: StageSet


@dataclass
class RunProgress:
    """What the run has done so far. Each field has one writer: the inference thread the frame
    times, the alert thread the alerts, the main thread the rest."""

    started: float = field(default_factory=time.monotonic)
    first_frame_at: float | None = None
    finished_at: float | None = None  # when inference ended
    fps_now: float = 0.0  # over the last second, for the heartbeat
    alerts: list[AlertRecord] = field(default_factory=list)
    alert_failures: int = 0
    outbox_left: dict[str, Any] | None = None  # what still waits, once alerting stopped

    def elapsed_s(self) -> float:
        start = self.first_frame_at or self.started
        end = self.finished_at or time.monotonic()
        return max(end - start, 1e-6)
