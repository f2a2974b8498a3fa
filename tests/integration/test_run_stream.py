"""`edge run` on a network camera whose stream is cut mid-run: it reconnects, finishes cleanly."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from video_helpers import DEMO_PUBLIC_KEY, DEMO_WATCHLIST, MjpegCamera, Plan

from edge.alerts.schema import validate_alert
from edge.cli import main
from edge.services.recognizer import EXIT_SOURCE_LOST

CLIP_FRAMES = 275


def test_a_cut_stream_is_survived(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    config = tmp_path / "edge.yaml"
    config.write_text("capture:\n  reconnect_min_s: 0.1\n  reconnect_max_s: 0.2\n")
    # The camera sends the first 120 frames, drops the connection, sends the rest on the next
    # one, then goes away for good. Paced at 90 fps: quicker than real time, still a live feed.
    with MjpegCamera([Plan(0, 120), Plan(120, CLIP_FRAMES)], fps=90) as camera:
        caplog.set_level(logging.INFO)
        code = main(
            [
                "run",
                "--source",
                camera.url,
                "--watchlist",
                str(DEMO_WATCHLIST),
                "--pubkey",
                str(DEMO_PUBLIC_KEY),
                "--config",
                str(config),
                "--max-reconnects",
                "2",
                "--state-dir",
                str(tmp_path / "state"),
                "--alerts-jsonl",
                str(tmp_path / "alerts.jsonl"),
                "--metrics-json",
                str(tmp_path / "metrics.json"),
                "--no-publish",
                "--no-status",
            ]
        )
    assert code == EXIT_SOURCE_LOST  # the camera never came back: a clean end, reported
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    frames = metrics["frames"]
    assert frames["read"] == CLIP_FRAMES  # both connections' frames arrived
    assert frames["processed"] + frames["dropped"] + frames["discarded_at_stop"] == CLIP_FRAMES
    assert metrics["reconnects"] == 3 and metrics["end"].startswith("source lost")
    # Two outages: the cut (over once the second connection's frames came) and the end, which
    # lasts until the run gave up.
    assert metrics["outages"]["count"] == 2 and metrics["outages"]["ongoing"]
    assert metrics["frames_s"] < metrics["elapsed_s"]
    messages = [r.getMessage() for r in caplog.records]
    assert any("lost stream" in m and "reconnecting" in m for m in messages)
    assert any("reopened" in m for m in messages)
    assert not any("secret" in m for m in messages)  # the URL's password is never logged
    for line in (tmp_path / "alerts.jsonl").read_text().splitlines():
        alert = json.loads(line)
        validate_alert(alert)
        assert alert["entry"]["label"] == "Lin-Manuel Miranda"
