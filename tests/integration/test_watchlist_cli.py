"""The commands: keys generate, watchlist build/verify/show/install/status, identify."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from recognition_helpers import LFW_DIR as LFW
from watchlist_helpers import build_full, people

from edge.cli import main
from edge.models import ModelPin
from edge.samples import SAME_PERSON
from edge.watchlist.manifest import INDEX, MANIFEST

needs_lfw = pytest.mark.skipif(not (LFW / "images").is_dir(), reason=f"LFW not found at {LFW}")


def real_model() -> ModelPin:
    from edge.models import catalog

    return ModelPin("mobilefacenet", catalog()["mobilefacenet.tflite"].sha256)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def keys(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[Path, Path]:
    code, out, _ = run(capsys, "keys", "generate", "--out", str(tmp_path / "keys"))
    assert code == 0 and "key id" in out
    priv = tmp_path / "keys" / "watchlist-signing.key"
    assert priv.stat().st_mode & 0o777 == 0o600
    return priv, tmp_path / "keys" / "watchlist-signing.pub"


def test_keys_generate_refuses_to_overwrite(
    tmp_path: Path, keys: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "keys", "generate", "--out", str(tmp_path / "keys"))
    assert code == 2 and err.startswith("edge: error:") and "already exists" in err
    assert err.count("\n") == 1


def _bundle(tmp_path: Path, keys: tuple[Path, Path], version: int = 1, **kw: Any) -> Path:
    from edge.watchlist import keys as keyring

    out = tmp_path / f"bundle-v{version}-{kw.get('list_id', 'x')}"
    build_full(
        out,
        people(version, 5),
        keyring.load_private_key(keys[0]),
        version,
        model=real_model(),
        **kw,
    )
    return out


def test_verify_show_install_status(
    tmp_path: Path, keys: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    import datetime as dt

    from watchlist_helpers import NOW

    valid = {"valid_until": dt.datetime.now(dt.UTC) + dt.timedelta(days=3), "valid_from": NOW}
    b1 = _bundle(tmp_path, keys, 1, **valid)
    b2 = _bundle(tmp_path, keys, 2, **valid)
    code, out, _ = run(capsys, "watchlist", "verify", str(b1), "--pubkey", str(keys[1]))
    assert code == 0 and "contents OK" in out
    code, out, _ = run(capsys, "watchlist", "show", str(b1), "--entries", "--json")
    shown = json.loads(out)
    assert shown["verified"] is False and len(shown["entries"]) == 5
    code, out, _ = run(capsys, "watchlist", "show", str(b1))
    assert "not verified" in out and "fixed threshold 0.5000" in out

    state = ["--state-dir", str(tmp_path / "state"), "--pubkey", str(keys[1])]
    code, out, err = run(capsys, "watchlist", "install", str(b1), *state)
    assert code == 0, err
    assert "installed test-list version 1" in out

    # a tampered bundle: refused, one line, exit 2, and v1 still active
    bad = tmp_path / "bad"
    shutil.copytree(b2, bad)
    data = bytearray((bad / INDEX).read_bytes())
    data[100] ^= 0xFF
    (bad / INDEX).write_bytes(bytes(data))
    code, out, err = run(capsys, "watchlist", "install", str(bad), *state)
    assert code == 2
    assert err.startswith("edge: error: watchlist refused (hash check): index.usearch")
    assert err.count("\n") == 1
    code, out, _ = run(capsys, "watchlist", "status", *state, "--json")
    status = json.loads(out)
    assert status["manifest"]["version"] == 1 and status["state"] == "active"

    code, out, err = run(capsys, "watchlist", "install", str(b2), *state)
    assert code == 0, err
    assert "(was version 1)" in out
    code, out, _ = run(capsys, "watchlist", "install", str(b1), *state)
    assert code == 2  # rollback
    # the refusal and the installs are in the audit log
    records = [
        json.loads(line) for line in (tmp_path / "state" / "audit.jsonl").read_text().splitlines()
    ]
    actions = [r["data"]["action"] for r in records if r["kind"] == "watchlist_change"]
    assert actions == ["installed", "refused", "installed", "refused"]


def test_verify_with_wrong_key_fails(
    tmp_path: Path, keys: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    b1 = _bundle(tmp_path, keys)
    run(capsys, "keys", "generate", "--out", str(tmp_path / "other"))
    code, _, err = run(
        capsys,
        "watchlist",
        "verify",
        str(b1),
        "--pubkey",
        str(tmp_path / "other" / "watchlist-signing.pub"),
    )
    assert code == 2 and "(signature check): signed by key" in err


def test_show_of_garbage_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / MANIFEST).write_text("[]")
    code, _, err = run(capsys, "watchlist", "show", str(tmp_path / "b"))
    assert code == 2 and "(manifest check)" in err and err.count("\n") == 1


def test_install_without_key_is_a_clear_error(
    tmp_path: Path, keys: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    b1 = _bundle(tmp_path, keys)
    code, _, err = run(capsys, "watchlist", "install", str(b1), "--state-dir", str(tmp_path / "s"))
    assert code == 2 and "no trusted public key" in err


def _lfw_photos(root: Path, people: dict[str, list[int]]) -> Path:
    for name, numbers in people.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for n in numbers:
            shutil.copy(LFW / "images" / name / f"{name}_{n:04d}.jpg", root / name)
    return root


@needs_lfw
def test_build_install_identify_and_delta_on_real_photos(
    tmp_path: Path, keys: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    photos = _lfw_photos(
        tmp_path / "photos",
        {"Colin_Powell": [1, 2], "Tony_Blair": [1, 2], "Hugo_Chavez": [1], "Gray_Davis": [1]},
    )
    entries = tmp_path / "entries.csv"
    with entries.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["label", "reason", "case_ref", "expires"])
        w.writerow(["Tony_Blair", "test entry", "CASE-7", "2099-01-01"])
    priv, pub = keys
    common = ["--key", str(priv), "--list-id", "gate-1", "--expires", "2099-12-31"]
    code, out, err = run(
        capsys,
        "watchlist",
        "build",
        "--photos",
        str(photos),
        "--out",
        str(tmp_path / "v1"),
        "--entries",
        str(entries),
        "--version",
        "1",
        "--report",
        str(tmp_path / "r.json"),
        *common,
    )
    assert code == 0, err
    assert "entries 4, templates 6" in out and "target FPIR 0.001" in out
    assert json.loads((tmp_path / "r.json").read_text())["accepted"] == 6

    state = ["--state-dir", str(tmp_path / "state"), "--pubkey", str(pub)]
    assert run(capsys, "watchlist", "install", str(tmp_path / "v1"), *state)[0] == 0

    probe = LFW / "images" / "Colin_Powell" / "Colin_Powell_0005.jpg"
    code, out, err = run(capsys, "identify", str(probe), *state, "--json")
    assert code == 0, err
    result = json.loads(out)
    (face,) = result["faces"]
    assert face["decision"] == "match" and face["match"]["label"] == "Colin_Powell"
    assert face["match"]["score"] >= result["threshold"]

    second_photo = LFW / "images" / "Gray_Davis" / "Gray_Davis_0002.jpg"
    code, out, _ = run(
        capsys,
        "identify",
        str(second_photo),
        "--watchlist",
        str(tmp_path / "v1"),
        "--pubkey",
        str(pub),
    )
    assert code == 0 and "Gray_Davis" in out  # text output names the candidate

    # v2: Hugo_Chavez leaves, Tony_Blair gets a third photo -> a delta and its full twin
    shutil.rmtree(photos / "Hugo_Chavez")
    _lfw_photos(photos, {"Tony_Blair": [3]})
    entries.write_text("label,reason\nTony_Blair,updated\n")
    code, out, err = run(
        capsys,
        "watchlist",
        "build",
        "--photos",
        str(photos),
        "--out",
        str(tmp_path / "v2d"),
        "--base",
        str(tmp_path / "v1"),
        "--full-out",
        str(tmp_path / "v2"),
        "--entries",
        str(entries),
        *common,
    )
    assert code == 0, err
    assert "delta against version 1: removes 2 entries, adds 1" in out  # Hugo gone, Tony replaced
    assert run(capsys, "watchlist", "install", str(tmp_path / "v2d"), *state)[0] == 0
    code, out, _ = run(capsys, "watchlist", "status", *state, "--json")
    assert json.loads(out)["manifest"]["counts"] == {"entries": 3, "templates": 6}
    code, out, _ = run(capsys, "watchlist", "verify", str(tmp_path / "v2d"), "--pubkey", str(pub))
    assert code == 0 and "checked against the base on install" in out
    code, out, _ = run(capsys, "watchlist", "verify", str(tmp_path / "v2"), "--pubkey", str(pub))
    assert code == 0


@needs_lfw
def test_build_refuses_bad_input(
    tmp_path: Path, keys: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    photos = _lfw_photos(tmp_path / "photos", {"Colin_Powell": [1]})
    base = ["watchlist", "build", "--key", str(keys[0]), "--out", str(tmp_path / "o")]
    (tmp_path / "empty").mkdir()
    code, _, err = run(capsys, *base, "--photos", str(tmp_path / "empty"))
    assert code == 2 and "is empty" in err and err.count("\n") == 1
    (tmp_path / "bad.csv").write_text("label;reason\nColin_Powell;x\n")
    code, _, err = run(
        capsys, *base, "--photos", str(photos), "--entries", str(tmp_path / "bad.csv")
    )
    assert code == 2 and "entries CSV" in err and err.count("\n") == 1
    assert not (tmp_path / "o").exists()


def _two_faces(path: Path, first: Path, second: Path, second_side: int) -> None:
    """``first`` 250 px wide on the left of a grey canvas, ``second`` scaled to ``second_side``
    on the right: two faces, the first about 100 px wide."""
    import cv2
    import numpy as np

    canvas = np.full((300, 520, 3), 120, np.uint8)
    canvas[25:275, 10:260] = cv2.resize(cv2.imread(str(first)), (250, 250))
    side = second_side
    canvas[25 : 25 + side, 510 - side : 510] = cv2.resize(cv2.imread(str(second)), (side, side))
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), canvas)


def test_build_picks_the_clearly_largest_face_and_fails_on_an_entry_without_a_photo(
    tmp_path: Path, keys: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """A photo with a second, smaller face in the background is enrolled with the largest face
    (and the report says so); an entry left with no usable photo fails the build (exit 1,
    nothing written) unless --allow-partial."""
    from edge.samples import OTHER_PERSON, SAME_PERSON

    photos = tmp_path / "photos"
    # Colin Powell's face ~101 px, Tony Blair's in the background ~55 px: 1.8x, clearly larger.
    _two_faces(photos / "Colin_Powell" / "group.png", SAME_PERSON[0], OTHER_PERSON, 130)
    # Tony Blair beside someone of the same size (~1.05x): no face is clearly the largest.
    _two_faces(photos / "Tony_Blair" / "pair.png", SAME_PERSON[1], OTHER_PERSON, 240)
    base = ["watchlist", "build", "--photos", str(photos), "--key", str(keys[0])]

    out = tmp_path / "list"
    code, stdout, err = run(capsys, *base, "--out", str(out), "--report", str(tmp_path / "r1"))
    assert code == 1, err
    assert err.startswith("edge: error: 1 of 2 entries have no usable photo (Tony_Blair)")
    assert "--allow-partial" in err and err.count("\n") == 1
    assert not out.exists() and not Path(f"{out}.dispatch.json").exists()
    assert "picked in " in stdout and "largest of 2 faces" in stdout
    report = json.loads((tmp_path / "r1").read_text())
    (picked,) = report["picked"]
    assert picked["label"] == "Colin_Powell" and picked["picked"].startswith("largest of 2")
    (rejected,) = report["rejected"]
    assert "none clearly the largest" in rejected["reason"] and "1.5x" in rejected["reason"]

    code, stdout, err = run(capsys, *base, "--out", str(out), "--allow-partial")
    assert code == 0, err
    assert "left off the list: Tony_Blair: no usable photo" in stdout
    assert "entries 1, templates 1" in stdout

    # --pick only is the old rule: a second face anywhere rejects the photo.
    code, _, err = run(capsys, *base, "--out", str(tmp_path / "o2"), "--pick", "only")
    assert code == 2 and "no usable photo of any current entry" in err


def test_a_trusted_key_serves_every_command_without_pubkey(
    tmp_path: Path, keys: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """`edge keys trust` once; then verify, install, status and identify need no --pubkey and
    no config (the key is in <state_dir>/trusted)."""
    import datetime as dt

    from watchlist_helpers import NOW

    from edge.demo import DEMO_PUBLIC_KEY
    from edge.samples import OTHER_PERSON

    valid = {"valid_until": dt.datetime.now(dt.UTC) + dt.timedelta(days=3), "valid_from": NOW}
    bundle = _bundle(tmp_path, keys, 1, **valid)
    state = ["--state-dir", str(tmp_path / "state")]
    code, _, err = run(capsys, "watchlist", "verify", str(bundle), *state)
    assert code == 2 and "edge keys trust PUB.pem" in err and err.count("\n") == 1

    code, out, err = run(capsys, "keys", "trust", str(keys[1]), *state)
    assert code == 0, err
    (stored,) = (tmp_path / "state" / "trusted").iterdir()
    assert out.startswith(f"trusted key {stored.stem} ({stored})")
    assert run(capsys, "keys", "trust", str(keys[1]), *state)[1].startswith("already trusted")
    code, _, err = run(capsys, "keys", "trust", str(DEMO_PUBLIC_KEY), *state)
    assert code == 2 and "is the demo key" in err

    code, out, err = run(capsys, "watchlist", "verify", str(bundle), *state)
    assert code == 0 and "contents OK" in out, err
    code, out, err = run(capsys, "watchlist", "install", str(bundle), *state)
    assert code == 0 and "installed test-list version 1" in out, err
    code, out, err = run(capsys, "watchlist", "status", *state)
    assert code == 0 and "active, verified" in out, err
    code, out, err = run(capsys, "identify", str(OTHER_PERSON), *state)
    assert code == 0 and "watchlist test-list v1" in out, err
    code, out, err = run(capsys, "identify", str(OTHER_PERSON), "--watchlist", str(bundle), *state)
    assert code == 0 and "watchlist test-list v1" in out, err


@pytest.mark.parametrize(
    "window",
    [
        ["--valid-from", "2020-01-01"],  # + the default 30 days: written, expired, before
        ["--valid-from", "2020-01-01", "--expires", "2020-06-01"],  # likewise
        ["--expires", "2020-01-01"],  # refused before too, as a window that ends too soon
    ],
    ids=["default-validity-past", "window-past", "expires-past"],
)
def test_build_refuses_a_list_that_would_arrive_expired(
    tmp_path: Path, keys: tuple[Path, Path], capsys: pytest.CaptureFixture[str], window: list[str]
) -> None:
    photos = tmp_path / "photos" / "Colin_Powell"
    photos.mkdir(parents=True)
    shutil.copy(SAME_PERSON[0], photos / "1.jpg")
    code, _, err = run(
        capsys,
        "watchlist",
        "build",
        "--photos",
        str(tmp_path / "photos"),
        "--key",
        str(keys[0]),
        "--out",
        str(tmp_path / "o"),
        *window,
    )
    assert code == 2 and err.startswith("edge: error: ") and err.count("\n") == 1
    assert "has passed" in err and "nothing written" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keys", "photos"]  # nothing written


def test_build_refuses_a_version_beyond_2_to_the_53(
    tmp_path: Path, keys: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    photos = tmp_path / "photos" / "Colin_Powell"
    photos.mkdir(parents=True)
    shutil.copy(SAME_PERSON[0], photos / "1.jpg")
    argv = ["watchlist", "build", "--photos", str(tmp_path / "photos"), "--key", str(keys[0])]
    code, _, err = run(capsys, *argv, "--out", str(tmp_path / "o"), "--version", str(2**70))
    assert code == 2 and "2^53" in err and err.count("\n") == 1
    assert not (tmp_path / "o").exists()
