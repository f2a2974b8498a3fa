"""`edge bench far` end to end on a tiny configuration (LFW, if present), and its bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from recognition_helpers import require_lfw

from edge.bench.far import Settings
from edge.cli import main
from edge.errors import EdgeError

FRAMES, FACES = 4, 4


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    status = main(["bench", "far", *args])
    out, err = capsys.readouterr()
    return status, out, err


def test_far_bench_on_lfw_gives_sane_figures_per_width(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    lfw = require_lfw()
    frames = tmp_path / "frames"
    status, out, err = run_cli(
        capsys,
        *("--data", str(lfw), "--frame", "1280x720", "--widths", "32,96"),
        *("--frames", str(FRAMES), "--faces", str(FACES), "--gallery-size", "10"),
        *("--save-frames", str(frames), "--json"),
    )
    assert status == 0, err
    result = json.loads(out)
    assert set(result["widths"]) == {"32", "96"}
    for row in result["widths"].values():
        assert {"detect", "false_per_frame", "identify", "ms_per_frame"} <= set(row)
        for key in ("detect", "identify", "identify_above_threshold", "false_match_rate"):
            assert 0.0 <= row[key] <= 1.0, key
        assert row["identify_above_threshold"] <= row["identify"] <= row["identify_ungated"]
        assert row["frames"] == FRAMES
        assert row["faces"] + row["unplaced"] == FRAMES * FACES
        assert row["mated"] + row["nonmated"] == row["faces"]
        assert row["false_per_frame"] >= 0 and row["ms_per_frame"] > 0
    big, small = result["widths"]["96"], result["widths"]["32"]
    assert big["detect"] > 0.8
    assert big["false_per_frame"] <= 0.5
    assert big["identify"] >= 0.6  # 10 people on the list, faces with 36 px between the eyes
    assert big["false_match_rate"] <= 0.25
    assert small["eye_px_median"] is None or small["eye_px_median"] < big["eye_px_median"]
    gallery = result["gallery"]
    assert gallery["identities"] == 10 and gallery["templates"] >= 10
    assert 0.3 < gallery["threshold"] < 0.9
    assert gallery["policy"] == {"mode": "fpir", "target_fpir": 0.001}
    assert result["full_size"]["identify"] >= 0.6
    assert result["frame"] == "1280x720" and result["tiling"]
    assert (frames / "w096_f000.jpg").is_file()  # the first frame of each width, boxes drawn


def _without_timings(result: dict[str, object]) -> dict[str, object]:
    out = {k: v for k, v in result.items() if k != "seconds"}
    widths = result["widths"]
    assert isinstance(widths, dict)
    out["widths"] = {
        w: {k: v for k, v in row.items() if "ms" not in k} for w, row in widths.items()
    }
    return out


def test_far_bench_is_a_function_of_its_seed(capsys: pytest.CaptureFixture[str]) -> None:
    lfw = require_lfw()
    args = ("--data", str(lfw), "--frame", "960x540", "--widths", "48", "--frames", "2")
    runs = []
    for seed in ("1", "1", "2"):
        status, out, err = run_cli(
            capsys, *args, "--faces", "4", "--gallery-size", "5", "--seed", seed, "--json"
        )
        assert status == 0, err
        runs.append(_without_timings(json.loads(out)))
    assert runs[0] == runs[1]
    assert runs[0]["gallery"] != runs[2]["gallery"] or runs[0]["widths"] != runs[2]["widths"]


def test_far_bench_refuses_a_folder_without_images(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    status, out, err = run_cli(capsys, "--data", str(tmp_path), "--frames", "1")
    assert status == 2 and out == ""
    assert err.startswith("edge: error: ") and "images/" in err and err.count("\n") == 1


def test_far_bench_refuses_bad_options(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    status, _, err = run_cli(
        capsys, "--data", str(tmp_path), "--frame", "640x360", "--widths", "200"
    )
    assert status == 2 and "does not fit a 640x360 frame" in err and err.count("\n") == 1
    status, _, err = run_cli(capsys, "--data", str(tmp_path), "--backgrounds", str(tmp_path / "x"))
    assert status == 2 and "--backgrounds" in err and err.count("\n") == 1
    for bad in (["--widths", "a,b"], ["--frame", "1920"], ["--frames", "0"]):
        with pytest.raises(SystemExit) as exit_info:
            main(["bench", "far", "--data", str(tmp_path), *bad])
        assert exit_info.value.code == 2
    capsys.readouterr()


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (Settings(frame=(1920, 1080), widths=(500,)), "does not fit"),
        (Settings(widths=(4,)), "at least 8 px"),
        (Settings(gallery_size=0), "at least 1"),
    ],
)
def test_settings_are_checked(settings: Settings, message: str) -> None:
    with pytest.raises(EdgeError, match=message):
        settings.check()


def test_write_clip_makes_a_walking_clip_in_which_edge_run_finds_the_listed_walkers(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """The clip names who walks in it; --enroll-photos gives a list of half of them (from
    their other LFW photos) that `edge run` on the clip alerts on, and on no stranger."""
    import cv2

    lfw = require_lfw()
    clip, people = tmp_path / "walk.mp4", tmp_path / "people"
    args = ["--data", str(lfw), "--write-clip", str(clip), "--frame", "1280x720"]
    args += ["--seconds", "3", "--enroll-photos", str(people)]
    status, out, err = run_cli(capsys, *args, "--json")
    assert status == 0, err
    made = json.loads(out)
    assert made["frames"] == 75 and made["frame"] == "1280x720"
    assert len(made["walkers"]) == 8 and len(made["listed"]) == 4
    assert made["walkers"][::2] == made["listed"]  # a listed person first, then a stranger
    assert sorted(p.name for p in people.iterdir()) == sorted(made["listed"])
    enrolled = {photo.name for photo in people.glob("*/*")}
    assert enrolled and not enrolled & set(made["photos"])  # never the photo in the clip
    video = cv2.VideoCapture(str(clip))
    assert (video.get(cv2.CAP_PROP_FRAME_WIDTH), video.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (
        1280,
        720,
    )
    assert int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == 75
    video.release()
    # Never overwritten: neither the clip nor the folder.
    assert run_cli(capsys, *args)[0] == 2
    clip.unlink()
    status, _, err = run_cli(capsys, *args)
    assert status == 2 and "--enroll-photos" in err and "already exists" in err
    status, _, err = run_cli(capsys, "--data", str(lfw), "--enroll-photos", str(tmp_path / "x"))
    assert status == 2 and "goes with --write-clip" in err and err.count("\n") == 1
    status, out, _ = run_cli(capsys, *args[:-2], "--json")  # the clip again, without a folder
    assert status == 0 and json.loads(out)["walkers"] == made["walkers"]

    assert main(["keys", "generate", "--out", str(tmp_path / "keys")]) == 0
    key = tmp_path / "keys" / "watchlist-signing"
    build = ["watchlist", "build", "--photos", str(people), "--key", f"{key}.key"]
    assert main([*build, "--out", str(tmp_path / "list"), "--list-id", "walk"]) == 0
    capsys.readouterr()
    metrics = tmp_path / "metrics.json"
    run = ["run", "--source", str(clip), "--no-publish", "--no-status"]
    run += ["--state-dir", str(tmp_path / "state"), "--metrics-json", str(metrics)]
    run += ["--watchlist", str(tmp_path / "list"), "--pubkey", f"{key}.pub"]
    assert main(run) == 0
    alerted = {line.split(": score")[0].split("Z ", 1)[1] for line in _alert_lines(capsys)}
    assert alerted <= set(made["listed"]), alerted  # no stranger
    assert len(alerted) >= 3, alerted  # 4 listed: each walks up to 160 px
    detection = json.loads(metrics.read_text())["detection"]
    assert detection["tiling"] == "whole frame + 768/176 + 384/112"
    assert detection["tiles"] == 75 * 3 and detection["crops"] > 0


def _alert_lines(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return [line for line in capsys.readouterr().out.splitlines() if line.startswith("ALERT ")]
