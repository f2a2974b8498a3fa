"""A run that sees nobody on the list leaves no image, crop or embedding anywhere on disk; a run
that alerts leaves only the alert, whose pictures show nobody but the listed person.

Each run is a separate process with its own state directory, TMPDIR, HOME and working
directory; afterwards every file in them is checked. For the first tests the list holds people
who are not in the footage (the shipped sample photos), so every face is a stranger's. The last
lists one of two people in a 1080p scene (tests/context_helpers.py) and decodes every JPEG the
run left anywhere, looking for the other one's face.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from context_helpers import (
    MATCHES,
    faces_in,
    jpegs_in,
    photo_embedding,
    scaled,
    two_face_scene,
)
from paths import REPO
from recognition_helpers import analyzer
from video_helpers import DEMO_CLIP

from edge import audit
from edge.alerts.model import Alert
from edge.alerts.schema import validate_alert
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
    return _signed_list(tmp, [SAME_PERSON[0], OTHER_PERSON], "strangers")


def _signed_list(tmp: Path, photos: list[Path], list_id: str) -> tuple[Path, Path]:
    private, public = keyring.generate_keypair(tmp / "keys")
    for photo in photos:
        person = tmp / "photos" / photo.stem.rsplit("_", 1)[0]
        person.mkdir(parents=True)
        (person / photo.name).write_bytes(photo.read_bytes())
    args = ["watchlist", "build", "--photos", str(tmp / "photos"), "--key", str(private)]
    assert main([*args, "--out", str(tmp / "list"), "--list-id", list_id]) == 0
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


def test_an_alert_s_pictures_show_nobody_but_the_listed_person(tmp_path: Path) -> None:
    """Colin Powell is listed, Tony Blair and the audience are not: the alert's context frame
    (and crop) are the only pictures the run leaves, and no face in any JPEG anywhere is
    Blair's."""
    scene = two_face_scene(analyzer(), (1920, 1080), 180.0, 90.0)
    clip = tmp_path / "input" / "scene.avi"  # the run's input, not something it wrote
    clip.parent.mkdir()
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter.fourcc(*"MJPG"), 25.0, (1920, 1080))
    for _ in range(40):
        writer.write(scene.image)
    writer.release()
    bundle, pubkey = _signed_list(tmp_path / "list", [SAME_PERSON[1]], "powell")
    (tmp_path / "run").mkdir()
    places = _run_isolated(tmp_path / "run", clip, bundle, pubkey)

    metrics = json.loads((places["out"] / "metrics.json").read_text())
    assert [a["label"] for a in metrics["alert_list"]] == ["Colin_Powell"]
    assert metrics["faces"]["embedded"] > metrics["alerts"]["raised"]  # Blair was seen too
    lines = (places["out"] / "alerts.jsonl").read_text().splitlines()
    assert len(lines) == 1
    alert = Alert.decode(lines[0].encode()).document()
    validate_alert(alert)
    context = alert["context"]
    assert (context["width"], context["height"]) == (640, 360) and "crop" in alert
    for name in ("tmpdir", "home", "cwd"):
        assert sorted(places[name].rglob("*")) == [], f"{name} holds files"
    state = places["state"]
    assert {p.name for p in state.rglob("*") if p.is_file()} <= STATE_FILES
    with sqlite3.connect(state / "outbox.db") as db:  # what the publisher would send
        stored = [Alert.decode(bytes(row[0])) for row in db.execute("SELECT payload FROM outbox")]
    assert [a.alert_id for a in stored] == [alert["alert_id"]]
    for record in audit.read_records(state / "audit.jsonl"):
        assert "crop" not in json.dumps(record) and "/9j/" not in json.dumps(record)

    # Every picture the run left anywhere, decoded: the files' raw bytes (whole JPEGs, base64
    # runs, fragments of database pages) and the outbox's alerts through SQLite.
    written = [p for place in ("state", "out") for p in places[place].rglob("*") if p.is_file()]
    images = [image for path in written for image in jpegs_in(path.read_bytes())]
    images += [image for a in stored for image in jpegs_in(a.encode())]
    assert len(images) >= 4  # the crop and the context, in the JSONL and in the outbox
    blair = photo_embedding(analyzer(), OTHER_PERSON)
    powell = photo_embedding(analyzer(), SAME_PERSON[1])
    faces = [face for image in images for face in faces_in(analyzer(), image)]
    to_blair = max(float(face @ blair) for face in faces)
    to_powell = max(float(face @ powell) for face in faces)
    print(
        f"{len(faces)} faces in the pictures; best vs Blair {to_blair:.3f}, Powell {to_powell:.3f}"
    )
    assert to_powell >= MATCHES  # the check sees faces, and the listed one is there
    assert to_blair < MATCHES

    # Where Blair stood, in the context frame that left: nothing of him.
    image = jpegs_in(context["data"].encode())[0]
    where = scaled(scene.other, 640 / 1920)
    seen = analyzer().embed(analyzer().align(np.asarray(image), [where]))[0]
    assert float(seen @ blair) < 0.3
