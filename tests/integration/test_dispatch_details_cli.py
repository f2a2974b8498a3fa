"""`edge watchlist build` keeps entry texts out of the bundle; `edge dispatch import-list` takes
them from the signed details file beside it (real model, demo photo, SQLite)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from paths import REPO

import edge.cli
from edge.dispatch.store import Store
from edge.watchlist.manifest import ENTRIES

DEMO = REPO / "edge" / "demo"
KEY = DEMO / "demo-keys" / "watchlist-signing.key"
PUB = DEMO / "demo-keys" / "watchlist-signing.pub"
LABEL = "Lin-Manuel Miranda"
TEXTS = ("Demo: missing person report", "CASE-2025-0042", "Demo warrant 7/2025")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = edge.cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    folder = tmp_path / "photos" / LABEL
    folder.mkdir(parents=True)
    shutil.copyfile(DEMO / "lin-manuel-miranda.png", folder / "photo.png")
    (tmp_path / "entries.csv").write_text(
        f"label,reason,case_ref,legal_basis,expires\n{LABEL},{','.join(TEXTS)},2099-12-31\n"
    )
    return tmp_path / "photos"


def build(capsys: pytest.CaptureFixture[str], photos: Path, *extra: str) -> tuple[int, str, str]:
    return run(
        capsys,
        "watchlist",
        "build",
        "--photos",
        str(photos),
        "--list-id",
        "demo",
        "--key",
        str(KEY),
        "--entries",
        str(photos.parent / "entries.csv"),
        *extra,
    )


def import_list(
    capsys: pytest.CaptureFixture[str], bundle: Path, db: str, *extra: str
) -> tuple[int, str, str]:
    return run(
        capsys, "dispatch", "import-list", str(bundle), "--pubkey", str(PUB), "--db", db, *extra
    )


def test_texts_go_to_the_details_file_and_reach_dispatch(
    tmp_path: Path, photos: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bundle = tmp_path / "list"
    code, out, err = build(capsys, photos, "--out", str(bundle), "--version", "3", "--json")
    assert code == 0, err
    sidecar = tmp_path / "list.dispatch.json"
    assert json.loads(out)["dispatch_details"] == str(sidecar)
    entries = (bundle / ENTRIES).read_bytes()
    for text in (*TEXTS, "reason", "legal_basis", "case_ref"):
        assert text.encode() not in entries  # never sent to a device
    assert b'"expires":"2099-12-31T00:00:00Z"' in entries
    assert sidecar.is_file() and b"CASE-2025-0042" in sidecar.read_bytes()
    code, out, _ = run(capsys, "watchlist", "show", str(bundle), "--entries")
    assert code == 0 and "CASE-2025-0042" not in out

    db = f"sqlite:///{tmp_path / 'd.db'}"
    code, out, err = import_list(capsys, bundle, db, "--photos", str(photos))
    assert code == 0, err
    assert "1 entry (1 with a reason, legal basis or case reference), 1 reference photo" in out
    assert f"entry details from {sidecar}" in out
    with Store(db) as store:
        entry = store.entry("demo", "0")
        assert entry is not None
        assert (entry.reason, entry.case_ref, entry.legal_basis) == TEXTS
        assert entry.expires == "2099-12-31T00:00:00Z" and entry.photos == 1


def test_tampered_and_foreign_details_are_refused_in_one_line(
    tmp_path: Path, photos: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    v1, v2 = tmp_path / "v1", tmp_path / "v2"
    assert build(capsys, photos, "--out", str(v1), "--version", "1")[0] == 0
    other = tmp_path / "v2-details.json"
    assert (
        build(capsys, photos, "--out", str(v2), "--version", "2", "--dispatch-out", str(other))[0]
        == 0
    )
    assert not (tmp_path / "v2.dispatch.json").exists()
    db = f"sqlite:///{tmp_path / 'd.db'}"

    code, _, err = import_list(capsys, v1, db, "--details", str(other))
    assert code == 2 and err.startswith("edge: error:") and err.count("\n") == 1
    assert "(details check)" in err and "belong to list demo version 2" in err
    code, _, err = import_list(capsys, v2, db)  # no v2.dispatch.json: the bundle has no texts
    assert code == 0 and "no details file" in err
    code, _, err = import_list(capsys, v2, db, "--details", str(other), "--json")
    assert code == 0, err

    sidecar = tmp_path / "v1.dispatch.json"
    sidecar.write_bytes(sidecar.read_bytes().replace(b"CASE-2025-0042", b"CASE-2025-0043"))
    code, _, err = import_list(capsys, v1, db)
    assert code == 2 and err.count("\n") == 1
    assert "(details check)" in err and "signature does not match" in err
    with Store(db) as store:
        assert [w.version for w in store.watchlists()] == [2]


def test_build_refuses_to_overwrite_details_before_building(
    tmp_path: Path, photos: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "list.dispatch.json").write_text("keep me")
    code, _, err = build(capsys, photos, "--out", str(tmp_path / "list"))
    assert code == 2 and "already exists" in err and err.count("\n") == 1
    assert not (tmp_path / "list").exists()
    assert (tmp_path / "list.dispatch.json").read_text() == "keep me"
    inside = tmp_path / "list" / "details.json"
    code, _, err = build(
        capsys, photos, "--out", str(tmp_path / "list"), "--dispatch-out", str(inside)
    )
    assert code == 2 and "outside the bundle folder" in err and err.count("\n") == 1
    assert not (tmp_path / "list").exists()


def test_a_delta_build_writes_details_of_the_whole_list_beside_the_full_twin(
    tmp_path: Path, photos: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert build(capsys, photos, "--out", str(tmp_path / "v1"), "--version", "1")[0] == 0
    (photos.parent / "entries.csv").write_text(f"label,case_ref\n{LABEL},CASE-2025-0099\n")
    code, out, err = build(
        capsys,
        photos,
        "--out",
        str(tmp_path / "v2.delta"),
        "--base",
        str(tmp_path / "v1"),
        "--full-out",
        str(tmp_path / "v2"),
        "--version",
        "2",
    )
    assert code == 0, err
    assert f"written to {tmp_path / 'v2.dispatch.json'}" in out
    assert not (tmp_path / "v2.delta.dispatch.json").exists()
    db = f"sqlite:///{tmp_path / 'd.db'}"
    code, out, err = import_list(capsys, tmp_path / "v2", db, "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["details"] == str(tmp_path / "v2.dispatch.json") and report["version"] == 2
    with Store(db) as store:
        entry = store.entry("demo", "0")
        assert entry is not None and entry.case_ref == "CASE-2025-0099"
        assert entry.reason is None
