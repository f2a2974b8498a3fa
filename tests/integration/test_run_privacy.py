"""A run that sees nobody on the list leaves no image, crop or embedding anywhere on disk.

Each run is a separate process with its own state directory, TMPDIR, HOME and working
directory; afterwards every file in them is checked. The list holds people who are not in the
footage (the shipped sample photos), so every face is a stranger's.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import cv2
import pytest
from paths import REPO
from video_helpers import DEMO_CLIP

from edge import audit
from edge.cli import main
from edge.samples import OTHER_PERSON, SAME_PERSON
from edge.watchlist import keys as keyring

# run-metrics.json: the run's counters for the local API (edge sync), numbers only.
STATE_FILES = {"outbox.db", "outbox.db-wal", "outbox.db-shm", "audit.jsonl", "run-metrics.json"}
MAGIC = {
    b"\xff\xd8\xff": "JPEG",
    b"\x89PNG": "PNG",
    b"\x93NUMPY": "NumPy array",
    b"RIFF": "RIFF (AVI/WebP)",
    b"BM": "BMP",
}


@pytest.fixture(scope="module")
def strangers_list(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A signed list of the two sample people, neither of whom is in the demo clip."""
    tmp = tmp_path_factory.mktemp("strangers")
    private, public = keyring.generate_keypair(tmp / "keys")
    for photo in (SAME_PERSON[0], OTHER_PERSON):
        person = tmp / "photos" / photo.stem.rsplit("_", 1)[0]
        person.mkdir(parents=True)
        (person / photo.name).write_bytes(photo.read_bytes())
    args = ["watchlist", "build", "--photos", str(tmp / "photos"), "--key", str(private)]
    assert main([*args, "--out", str(tmp / "list"), "--list-id", "strangers"]) == 0
    return tmp / "list", public


def _run_isolated(tmp: Path, source: Path, bundle: Path, pubkey: Path) -> dict[str, Path]:
    places = {name: tmp / name for name in ("state", "tmpdir", "home", "cwd", "out")}
    for place in places.values():
        place.mkdir()
    # Not inherited: the package itself must turn ONNX Runtime's telemetry (and its files) off.
    inherited = {k: v for k, v in os.environ.items() if k != "ORT_DISABLE_TELEMETRY"}
    env = {
        **inherited,
        "EDGE_STATE_DIR": str(places["state"]),
        "TMPDIR": str(places["tmpdir"]),
        "HOME": str(places["home"]),
        "XDG_STATE_HOME": str(places["home"] / ".local" / "state"),
        "XDG_CACHE_HOME": str(places["home"] / ".cache"),
        "PYTHONPATH": str(REPO),
    }
    out = places["out"]
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "edge",
            "run",
            "--source",
            str(source),
            "--watchlist",
            str(bundle),
            "--pubkey",
            str(pubkey),
            "--alerts-jsonl",
            str(out / "alerts.jsonl"),
            "--metrics-json",
            str(out / "metrics.json"),
            "--no-publish",
            "--no-status",
        ],
        cwd=places["cwd"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return places


def _assert_nothing_of_the_faces_was_kept(places: dict[str, Path]) -> None:
    metrics = json.loads((places["out"] / "metrics.json").read_text())
    assert metrics["alert_list"] == [] and metrics["alerts"]["raised"] == 0
    assert metrics["faces"]["embedded"] > 0  # faces were seen, embedded and searched
    assert (places["out"] / "alerts.jsonl").read_text() == ""
    for name in ("tmpdir", "home", "cwd"):
        left = sorted(str(p.relative_to(places[name])) for p in places[name].rglob("*"))
        assert left == [], f"{name} holds {left}"
    state = places["state"]
    files = {p.name for p in state.rglob("*") if p.is_file()}
    assert files <= STATE_FILES, files - STATE_FILES
    for path in state.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            for magic, kind in MAGIC.items():
                assert not data.startswith(magic), f"{path} is a {kind} file"
            assert b"\xff\xd8\xff" not in data, f"{path} holds JPEG data"
            assert b"/9j/" not in data, f"{path} holds base64 JPEG data"
    with sqlite3.connect(state / "outbox.db") as db:
        assert db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0] == 0
    records = audit.read_records(state / "audit.jsonl")
    assert {r["kind"] for r in records} == {"watchlist_change"}
    for record in records:  # the list's id and size, nothing of a face
        assert set(record["data"]) == {"watchlist_id", "version", "change", "entries"}


def test_a_clip_with_nobody_on_the_list_leaves_nothing(
    tmp_path: Path, strangers_list: tuple[Path, Path]
) -> None:
    places = _run_isolated(tmp_path, DEMO_CLIP, *strangers_list)
    _assert_nothing_of_the_faces_was_kept(places)


def test_a_folder_of_stills_with_nobody_on_the_list_leaves_nothing(
    tmp_path: Path, strangers_list: tuple[Path, Path]
) -> None:
    stills = tmp_path / "stills"
    stills.mkdir()
    capture = cv2.VideoCapture(str(DEMO_CLIP))
    for index in range(275):
        ok, image = capture.read()
        assert ok
        if index in (5, 100, 150, 240):
            cv2.imwrite(str(stills / f"frame-{index:03d}.jpg"), image)
    capture.release()
    (stills / "miranda.png").write_bytes((DEMO_CLIP.parent / "lin-manuel-miranda.png").read_bytes())
    (tmp_path / "run").mkdir()
    places = _run_isolated(tmp_path / "run", stills, *strangers_list)
    _assert_nothing_of_the_faces_was_kept(places)
