"""`edge run` on the real Hamilton clip (../shared/data/hamilton_clip) with real watchlists.

Lin-Manuel Miranda is visible in frames 0-20 (small, on stage) and 82-210 (medium shot); the
scene cuts at frames 20, 82 and 211 were measured on the clip. In between, another man in
profile; from 211 on, the audience (Barack Obama in partial profile). With the cooldown set to 0,
every decision the tracker makes becomes an alert, so every one of them is checked.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from video_helpers import LFW_IMAGES, lfw_people, require_hamilton

from edge import audit
from edge.alerts.schema import validate_alert
from edge.cli import main
from edge.watchlist import keys as keyring

MIRANDA = "Lin-Manuel Miranda"
MIRANDA_FRAMES = ((0, 20), (82, 210))
pytestmark = pytest.mark.slow


def _visible(frame: int) -> bool:
    return any(lo <= frame <= hi for lo, hi in MIRANDA_FRAMES)


def _build(photos: Path, out: Path, key: Path, list_id: str) -> None:
    assert (
        main(
            [
                "watchlist",
                "build",
                "--photos",
                str(photos),
                "--key",
                str(key),
                "--out",
                str(out),
                "--list-id",
                list_id,
            ]
        )
        == 0
    )


def _run(tmp: Path, bundle: Path, pubkey: Path, clip: Path, name: str) -> dict[str, Any]:
    config = tmp / "every-decision.yaml"
    config.write_text("tracker:\n  cooldown_s: 0\n")
    out = tmp / name
    out.mkdir()
    code = main(
        [
            "run",
            "--source",
            str(clip),
            "--watchlist",
            str(bundle),
            "--pubkey",
            str(pubkey),
            "--config",
            str(config),
            "--state-dir",
            str(out / "state"),
            "--alerts-jsonl",
            str(out / "alerts.jsonl"),
            "--metrics-json",
            str(out / "metrics.json"),
            "--no-publish",
            "--no-status",
        ]
    )
    assert code == 0
    metrics: dict[str, Any] = json.loads((out / "metrics.json").read_text())
    metrics["dir"] = str(out)
    return metrics


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return keyring.generate_keypair(tmp_path_factory.mktemp("keys"))


@pytest.fixture(scope="module")
def miranda_run(
    tmp_path_factory: pytest.TempPathFactory, keys: tuple[Path, Path]
) -> dict[str, Any]:
    data = require_hamilton()
    tmp = tmp_path_factory.mktemp("miranda")
    person = tmp / "photos" / MIRANDA
    person.mkdir(parents=True)
    shutil.copyfile(data / "references" / "lin-manuel-miranda.png", person / "photo.png")
    _build(person.parent, tmp / "list", keys[0], "hamilton")
    return _run(tmp, tmp / "list", keys[1], data / "short_hamilton_clip.mp4", "run")


def test_miranda_is_alerted_and_only_on_frames_where_he_is_visible(
    miranda_run: dict[str, Any],
) -> None:
    alerts = miranda_run["alert_list"]
    assert alerts, "no alert for Lin-Manuel Miranda"
    assert {a["label"] for a in alerts} == {MIRANDA}
    frames = [a["frame"] for a in alerts]
    assert all(_visible(f) for f in frames), frames
    # Both of his appearances are recognised, the medium shot most of all.
    assert any(f <= 20 for f in frames) and any(82 <= f <= 210 for f in frames)
    assert miranda_run["frames"] == {
        "read": 275,
        "processed": 275,
        "dropped": 0,
        "skipped": 0,
        "corrupt": 0,
        "discarded_at_stop": 0,
    }
    assert miranda_run["tracks"]["scene_cuts"] == 3


def test_alerts_are_schema_valid_committed_and_audited(miranda_run: dict[str, Any]) -> None:
    out = Path(miranda_run["dir"])
    lines = (out / "alerts.jsonl").read_text().splitlines()
    documents = [json.loads(line) for line in lines]
    for document in documents:
        validate_alert(document)
        assert document["entry"]["label"] == MIRANDA and document["test"] is False
        assert document["crop"]["media_type"] == "image/jpeg"
    ids = [d["alert_id"] for d in documents]
    assert ids == [a["alert_id"] for a in miranda_run["alert_list"]]
    with sqlite3.connect(out / "state" / "outbox.db") as db:
        stored = {row[0] for row in db.execute("SELECT alert_id FROM outbox")}
    assert stored == set(ids)  # not published (--no-publish): all still waiting
    records = audit.read_records(out / "state" / "audit.jsonl")
    assert audit.verify(out / "state" / "audit.jsonl").ok
    assert sum(r["kind"] == "hit" for r in records) == len(ids)
    assert records[0]["kind"] == "watchlist_change"


def test_per_stage_metrics_are_reported(miranda_run: dict[str, Any]) -> None:
    latency = miranda_run["latency_ms"]
    for stage in ("capture", "detect", "track", "align", "embed", "match", "alert", "frame"):
        assert latency[stage]["count"] > 0 and latency[stage]["p90_ms"] >= 0, stage
    assert latency["detect"]["count"] == 275
    faces = miranda_run["faces"]
    # Detection runs on every frame; alignment and embedding only on a fraction of the faces.
    assert faces["embedded"] < faces["assessed"] < faces["detected"] / 2
    # The 400 MB goal is a benchmark figure (the run reports it), not a test: in a pytest process
    # the peak counts every earlier test too.
    assert miranda_run["peak_rss_mb"] > 0


def test_an_unrelated_list_gives_no_alert(
    tmp_path_factory: pytest.TempPathFactory, keys: tuple[Path, Path]
) -> None:
    data = require_hamilton()
    if not LFW_IMAGES.is_dir():
        pytest.skip(f"LFW images not found at {LFW_IMAGES}")
    tmp = tmp_path_factory.mktemp("lfw")
    for name, photo in lfw_people(60):
        (tmp / "photos" / name).mkdir(parents=True)
        shutil.copyfile(photo, tmp / "photos" / name / photo.name)
    _build(tmp / "photos", tmp / "list", keys[0], "lfw-60")
    metrics = _run(tmp, tmp / "list", keys[1], data / "short_hamilton_clip.mp4", "run")
    assert metrics["alert_list"] == []
    assert metrics["faces"]["embedded"] > 20  # faces were searched, and none matched
    assert (Path(metrics["dir"]) / "alerts.jsonl").read_text() == ""
