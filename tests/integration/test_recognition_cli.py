"""`edge detect | compare | embed` on real photos, and every kind of bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from input_helpers import dev_zero, fifo, sparse
from paths import FIXTURES, REPO

from edge.cli import main
from edge.demo import DEMO_PUBLIC_KEY, DEMO_WATCHLIST
from edge.pipeline.images import MAX_PIXELS, read_image
from edge.samples import OTHER_PERSON, SAME_PERSON
from edge.system.inputs import MAX_IMAGE_BYTES


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    status = main(list(args))
    out, err = capsys.readouterr()
    return status, out, err


def test_detect_json(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run_cli(capsys, "detect", str(SAME_PERSON[0]), "--json")
    assert status == 0
    (face,) = json.loads(out)["faces"]
    assert len(face["box"]) == 4 and len(face["keypoints"]) == 6
    assert 0.5 < face["score"] <= 1 and 0 < face["quality"] <= 1


def test_compare_same_and_different(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run_cli(capsys, "compare", *map(str, SAME_PERSON), "--json")
    assert status == 0 and json.loads(out)["same_person"] is True
    status, out, _ = run_cli(capsys, "compare", str(SAME_PERSON[0]), str(OTHER_PERSON), "--json")
    assert status == 0 and json.loads(out)["same_person"] is False


def test_embed_reports_bad_files_on_their_line_and_goes_on(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not an image")
    status, out, _ = run_cli(
        capsys, "embed", str(SAME_PERSON[0]), str(broken), str(OTHER_PERSON), "--json"
    )
    lines = [json.loads(line) for line in out.splitlines()]
    assert status == 2
    assert [line["path"] for line in lines] == [str(SAME_PERSON[0]), str(broken), str(OTHER_PERSON)]
    assert "error" in lines[1]
    for line in (lines[0], lines[2]):
        (face,) = line["faces"]
        assert len(face["embedding"]) == 192 and len(face["box"]) == 4
        assert abs(np.linalg.norm(face["embedding"]) - 1) < 1e-3


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _truncated_jpeg(tmp_path: Path) -> Path:
    data = SAME_PERSON[0].read_bytes()
    path = tmp_path / "truncated.jpg"
    path.write_bytes(data[: len(data) // 2])
    return path


def _png16(tmp_path: Path) -> Path:
    path = tmp_path / "sixteen.png"
    image = read_image(SAME_PERSON[0]).astype(np.uint16) * 257
    cv2.imwrite(str(path), image)
    return path


def _huge(tmp_path: Path) -> Path:
    """A real 10000x10000 JPEG, written by a child process so this one never holds 300 MB."""
    path = tmp_path / "huge.jpg"
    subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, cv2, numpy as np; "
            "cv2.imwrite(sys.argv[1], np.full((10000, 10000, 3), 128, dtype=np.uint8))",
            str(path),
        ],
        check=True,
    )
    return path


def test_huge_images_are_refused_from_the_header() -> None:
    # edge/__init__.py hands OpenCV the same limit, so it refuses before allocating.
    assert os.environ["OPENCV_IO_MAX_IMAGE_PIXELS"] == str(MAX_PIXELS)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda tmp: tmp / "missing.jpg", "no such file"),
        (lambda tmp: _write(tmp / "empty.jpg", b""), "empty file"),
        (_truncated_jpeg, "truncated"),
        (lambda tmp: _write(tmp / "t.jpg", b"hello"), "not an image"),
        (lambda tmp: tmp, "is a directory"),
        (_huge, "too large"),
        (lambda tmp: dev_zero(tmp / "zero.jpg"), "is a character device, not a regular file"),
        (lambda tmp: fifo(tmp / "pipe.jpg"), "is a FIFO, not a regular file"),
        (lambda tmp: sparse(tmp / "big.bmp", MAX_IMAGE_BYTES + 1), "is larger than"),
    ],
    ids=[
        *("missing", "empty", "truncated", "text", "directory", "10000x10000"),
        *("dev-zero", "fifo", "over-the-byte-limit"),
    ],
)
def test_bad_images_give_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, make: object, message: str
) -> None:
    path = make(tmp_path)  # type: ignore[operator]
    status, out, err = run_cli(capsys, "detect", str(path))
    assert status == 2 and out == ""
    assert err.count("\n") == 1 and message in err and "Traceback" not in err


def test_sixteen_bit_png_is_converted_and_works(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    status, out, _ = run_cli(capsys, "detect", str(_png16(tmp_path)), "--json")
    assert status == 0 and len(json.loads(out)["faces"]) == 1


def test_cmyk_jpeg_is_converted_and_works(capsys: pytest.CaptureFixture[str]) -> None:
    cmyk = FIXTURES / "cmyk.jpg"  # see fixtures/README.md
    status, out, _ = run_cli(capsys, "detect", str(cmyk), "--json")
    assert status == 0 and len(json.loads(out)["faces"]) == 1


def test_no_face_is_an_empty_result_not_an_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((480, 640, 3), 200, dtype=np.uint8))
    status, out, _ = run_cli(capsys, "detect", str(blank), "--json")
    assert status == 0 and json.loads(out)["faces"] == []
    status, _, err = run_cli(capsys, "compare", str(blank), str(SAME_PERSON[0]))
    assert status == 2 and "no face found" in err


def test_a_wrong_config_key_is_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    config = tmp_path / "edge.yaml"
    config.write_text("detector:\n  score_treshold: 0.4\n")
    status, _, err = run_cli(capsys, "detect", str(SAME_PERSON[0]), "--config", str(config))
    assert status == 2 and "detector.score_treshold" in err and err.count("\n") == 1


def test_a_variant_that_does_not_ship_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run_cli(
        capsys, "detect", str(SAME_PERSON[0]), "--backend", "onnx", "--precision", "fp16"
    )
    assert status == 2 and err.count("\n") == 1
    assert "embedder.precision 'fp16' does not exist for runtime.backend 'onnx'" in err


def test_int8_runs_on_the_default_backend(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run_cli(
        capsys,
        "compare",
        *map(str, SAME_PERSON),
        "--precision",
        "int8",
        "--detector-precision",
        "int8",
        "--json",
    )
    assert status == 0 and json.loads(out)["same_person"]


def test_the_installed_command_never_prints_a_traceback(tmp_path: Path) -> None:
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)
    result = subprocess.run(
        [sys.executable, "-m", "edge", "detect", str(junk)], capture_output=True, text=True
    )
    assert result.returncode == 2
    assert result.stderr.startswith("edge: error:") and "Traceback" not in result.stderr


def test_a_reader_that_closes_stdout_early_ends_the_command_quietly() -> None:
    # `edge identify --json | head -c 10`: the reader is gone before the output is written.
    read_end, write_end = os.pipe()
    os.close(read_end)
    command = [sys.executable, "-m", "edge", "identify", str(SAME_PERSON[0]), "--json"]
    command += ["--watchlist", str(DEMO_WATCHLIST), "--pubkey", str(DEMO_PUBLIC_KEY)]
    try:
        result = subprocess.run(
            command,
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            timeout=120,
        )
    finally:
        os.close(write_end)
    assert result.returncode == 141, result.stderr  # as SIGPIPE ends other tools
    assert "Traceback" not in result.stderr and "BrokenPipe" not in result.stderr
    assert "Exception ignored" not in result.stderr
