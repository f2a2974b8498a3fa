"""Bounded reads of untrusted files, and depth-bounded JSON (edge.system.inputs)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from input_helpers import dev_zero, fifo, sparse

from edge.errors import ConfigError, EdgeError
from edge.system.inputs import MAX_JSON_DEPTH, load_json, read_bounded


def test_a_regular_file_is_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"x" * 100)
    assert read_bounded(path, 100, "thing") == b"x" * 100
    link = tmp_path / "link"
    link.symlink_to(path)  # symlinks to regular files are followed
    assert read_bounded(link, 100, "thing") == b"x" * 100


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: dev_zero(p), "is a character device, not a regular file"),
        (lambda p: fifo(p), "is a FIFO, not a regular file"),
        (lambda p: (p.mkdir(), p)[1], "is a directory, not a regular file"),
        (lambda p: p, "cannot read config {path}: no such file"),
        (lambda p: sparse(p, 101), "is larger than 100 bytes"),
    ],
    ids=["dev-zero", "fifo", "directory", "missing", "too-large"],
)
def test_anything_but_a_small_regular_file_is_refused_at_once(
    tmp_path: Path, make: object, message: str
) -> None:
    path = make(tmp_path / "input")  # type: ignore[operator]
    started = time.monotonic()
    with pytest.raises(ConfigError) as caught:
        read_bounded(path, 100, "config", ConfigError)
    assert time.monotonic() - started < 10.0  # at once: a blocking read would never return
    text = str(caught.value)
    assert message.format(path=path) in text and str(path) in text and "\n" not in text


def test_the_default_error_is_an_edge_error(tmp_path: Path) -> None:
    with pytest.raises(EdgeError):
        read_bounded(tmp_path / "nope", 10, "file")


def test_json_nested_too_deeply_is_a_value_error() -> None:
    assert load_json(b'{"a": [1, {"b": null}]}') == {"a": [1, {"b": None}]}
    ok = "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH
    assert load_json(ok) is not None
    for depth in (MAX_JSON_DEPTH + 1, 100_000):
        with pytest.raises(ValueError, match="nested more than"):
            load_json("[" * depth + "]" * depth)
    with pytest.raises(ValueError, match="nested more than"):
        load_json(json.dumps({"a": [[[[{"b": "x" * 10}]]]]}), max_depth=4)


@pytest.mark.parametrize("text", [b"\xff\xfe", b"{", b"NaN", b'{"a": Infinity}', b""])
def test_bad_json_is_a_value_error(text: bytes) -> None:
    with pytest.raises(ValueError):
        load_json(text)
