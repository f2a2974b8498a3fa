"""system/files.write_atomically: the old file or the new one, never half of one."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.system.files import write_atomically


def test_the_file_is_replaced_whole_and_nothing_is_left_beside_it(tmp_path: Path) -> None:
    target = tmp_path / "edge.yaml"
    target.write_text("old\n")
    write_atomically(target, b"new\n")
    assert target.read_text() == "new\n"
    assert [p.name for p in tmp_path.iterdir()] == ["edge.yaml"]


def test_a_failed_write_leaves_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "edge.yaml"
    target.mkdir()  # a directory cannot be replaced by a file
    with pytest.raises(OSError):
        write_atomically(target, b"new\n")
    assert target.is_dir() and [p.name for p in tmp_path.iterdir()] == ["edge.yaml"]
