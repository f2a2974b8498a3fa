"""Which face was enrolled: `edge watchlist build` records it in the signed details file, and
`edge dispatch import-list` keeps that face's crop beside the photo (real model, real photos:
LFW samples composed into a photo of two people; SQLite and PostgreSQL)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from dispatch_helpers import ENROLLED, SAMPLES, assert_is_the_enrolled_person, two_people_photo
from paths import REPO

import edge.cli
from edge.dispatch.importer import NO_FACE_OLD_BUNDLE, NO_FACE_OLD_DETAILS
from edge.dispatch.store import Store
from edge.watchlist import keys as keyring
from edge.watchlist.bundle import read_bundle
from edge.watchlist.details import details_bytes, details_path, read_details
from edge.watchlist.details_document import DETAILS_FORMAT, DETAILS_FORMAT_1

DEMO = REPO / "edge" / "demo"
KEY = DEMO / "demo-keys" / "watchlist-signing.key"
PUB = DEMO / "demo-keys" / "watchlist-signing.pub"


def build(photos: Path, out: Path, *extra: str) -> None:
    argv = ["watchlist", "build", "--photos", str(photos), "--list-id", "faces"]
    assert edge.cli.main([*argv, "--key", str(KEY), "--out", str(out), *extra]) == 0


def import_list(bundle: Path, photos: Path, db: str, capsys: pytest.CaptureFixture[str]) -> Any:
    capsys.readouterr()
    argv = ["dispatch", "import-list", str(bundle), "--photos", str(photos)]
    assert edge.cli.main([*argv, "--pubkey", str(PUB), "--db", db, "--json"]) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    two_people_photo(tmp_path / "photos" / ENROLLED / "with-a-colleague.jpg")
    return tmp_path / "photos"


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'dispatch.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


def test_the_enrolled_face_of_a_photo_of_two_people_is_recorded_and_imported(
    tmp_path: Path, photos: Path, db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    bundle = tmp_path / "list"
    build(photos, bundle)
    public_key = keyring.load_public_key(PUB)
    details = read_details(details_path(bundle), public_key, read_bundle(bundle, public_key))
    assert details.format == DETAILS_FORMAT
    (entry,) = details.entries
    (face,) = entry.faces
    x1, _, x2, _ = face.box
    assert x1 > 280 and x2 - x1 > 80  # the large face on the right, not the small one

    report = import_list(bundle, photos, db, capsys)
    assert report["photos"] == 1 and report["enrolled_faces"] == 1
    with Store(db) as store:
        (photo,) = store.entry_photos("faces", "0")
        assert (photo.width, photo.height) == (240, 129)  # the photo is 560 x 300
        assert photo.has_face and photo.face_note is None
        scale = 240 / 560
        assert photo.face_box == [round(v * scale) for v in face.box]
        crop = store.entry_photo("faces", "0", 0, face=True)
        assert crop is not None
        thumbnail = store.entry_photo("faces", "0", 0)
        assert thumbnail is not None
    assert_is_the_enrolled_person(crop)
    shown = cv2.imdecode(np.frombuffer(thumbnail, np.uint8), cv2.IMREAD_COLOR)
    assert shown.shape[:2] == (129, 240)


def test_a_delta_carries_the_enrolled_faces_of_the_photos_it_reuses(
    tmp_path: Path, photos: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    build(photos, tmp_path / "v1")
    blair = photos / "Tony Blair"
    blair.mkdir()
    cv2.imwrite(
        str(blair / "alone.jpg"), cv2.imread(str(SAMPLES / "Tony_Blair_0001.jpg"))[:, 70:250]
    )
    build(
        photos,
        tmp_path / "v2.delta",
        "--base",
        str(tmp_path / "v1"),
        "--full-out",
        str(tmp_path / "v2"),
    )
    public_key = keyring.load_public_key(PUB)
    v1 = read_details(
        details_path(tmp_path / "v1"), public_key, read_bundle(tmp_path / "v1", public_key)
    )
    v2 = read_details(
        details_path(tmp_path / "v2"), public_key, read_bundle(tmp_path / "v2", public_key)
    )
    by_label = {e.label: e for e in v2.entries}
    assert by_label[ENROLLED].faces == v1.entries[0].faces  # reused: carried over
    assert len(by_label["Tony Blair"].faces) == 1  # new: recorded
    report = import_list(tmp_path / "v2", photos, f"sqlite:///{tmp_path / 'd.db'}", capsys)
    assert report["entries"] == 2 and report["enrolled_faces"] == 2


def test_lists_that_do_not_say_which_face_still_import_and_say_why(
    tmp_path: Path, photos: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bundle = tmp_path / "list"
    build(photos, bundle)
    sidecar = details_path(bundle)
    public_key = keyring.load_public_key(PUB)
    details = read_details(sidecar, public_key, read_bundle(bundle, public_key))
    # A details file of format 1 (before faces were recorded), signed by the same key.
    old = dataclasses.replace(
        details,
        format=DETAILS_FORMAT_1,
        entries=tuple(dataclasses.replace(e, faces=()) for e in details.entries),
    )
    sidecar.write_bytes(details_bytes(old, keyring.load_private_key(KEY)))
    envelope = json.loads(sidecar.read_bytes())
    assert envelope["format"] == DETAILS_FORMAT_1
    assert "faces" not in json.loads(envelope["signed"])["entries"][0]
    db = f"sqlite:///{tmp_path / 'd.db'}"
    report = import_list(bundle, photos, db, capsys)
    assert report["photos"] == 1 and report["enrolled_faces"] == 0
    assert report["without_enrolled_face"] == [f"{ENROLLED}: {NO_FACE_OLD_DETAILS}"]
    with Store(db) as store:
        (photo,) = store.entry_photos("faces", "0")
        assert not photo.has_face and photo.face_note == NO_FACE_OLD_DETAILS
        assert store.entry_photo("faces", "0", 0) is not None  # the photo itself is there
    # A bundle without any details file (built before they moved out of it).
    sidecar.unlink()
    report = import_list(bundle, photos, db, capsys)
    assert report["details"] == "bundle" and report["enrolled_faces"] == 0
    with Store(db) as store:
        (photo,) = store.entry_photos("faces", "0")
        assert photo.face_note == NO_FACE_OLD_BUNDLE
