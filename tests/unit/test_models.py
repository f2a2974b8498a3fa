"""Shipped model files: present, hash-checked on load, and refused when altered or missing."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from edge.backends import open_session
from edge.errors import BackendError, ModelError
from edge.models import MODELS_DIR, catalog, file_sha256, verified_path


def test_every_shipped_file_matches_its_recorded_hash() -> None:
    assert catalog(), "models.json lists no model"
    for name, info in catalog().items():
        assert file_sha256(MODELS_DIR / name) == info.sha256, name


def test_sources_md_lists_every_file_and_hash() -> None:
    sources = (MODELS_DIR / "SOURCES.md").read_text()
    for name, info in catalog().items():
        assert name in sources and info.sha256 in sources, name


def test_a_flipped_byte_is_refused(tmp_path: Path) -> None:
    name = "blazeface_short_range.tflite"
    copy = tmp_path / name
    shutil.copyfile(MODELS_DIR / name, copy)
    data = bytearray(copy.read_bytes())
    data[len(data) // 2] ^= 0x01
    copy.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="corrupt"):
        verified_path(name, models_dir=tmp_path)


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="missing"):
        verified_path("mobilefacenet.onnx", models_dir=tmp_path)


def test_unknown_backend_is_a_clear_error() -> None:
    with pytest.raises(BackendError, match="unknown backend 'tensorrt'"):
        open_session("mobilefacenet", "tensorrt", 1)
