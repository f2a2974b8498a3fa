"""Shared bits for the recognition tests: one analyzer per configuration, real sample photos."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest
from paths import SHARED_DATA

from edge.config import Config, config_from_dict
from edge.pipeline.analyzer import FaceAnalyzer

LFW_DIR = SHARED_DATA / "lfw"


@cache
def analyzer(
    backend: str = "onnx", precision: str = "fp32", refiner: str = "mesh", detector: str = "fp32"
) -> FaceAnalyzer:
    data = Config().model_dump()
    data["runtime"]["backend"] = backend
    data["embedder"]["precision"] = precision
    data["detector"]["precision"] = detector
    data["align"]["refiner"] = refiner
    return FaceAnalyzer(config_from_dict(data))


def require_lfw() -> Path:
    if not (LFW_DIR / "pairs.txt").is_file():
        pytest.skip(f"LFW data not found at {LFW_DIR} (../shared/data/lfw is not on this machine)")
    return LFW_DIR
