"""Shared bits for the recognition tests: one analyzer per configuration, real sample photos."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import pytest
from paths import SHARED_DATA

from edge.config import Config, config_from_dict
from edge.pipeline.analyzer import FaceAnalyzer
from edge.types import Detection

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


def assert_int8_face_agrees(face: Detection, reference: Detection, label: str) -> None:
    """The int8 detector's face against fp32's on a bundled photo (fp32 scores 0.74 to 0.80).
    LiteRT's int8 moves Tony Blair's box and keypoints by 7% of the face width."""
    box_moved = np.abs(np.subtract(face.box, reference.box)).max() / reference.width
    points_moved = np.abs(face.keypoints - reference.keypoints).max() / reference.width
    assert box_moved < 0.15, f"{label}: a box corner moved by {box_moved:.1%} of the face width"
    assert points_moved < 0.08, f"{label}: a keypoint moved by {points_moved:.1%} of the width"
    assert face.score > 0.7, f"{label}: score {face.score:.3f} (fp32 {reference.score:.3f})"
