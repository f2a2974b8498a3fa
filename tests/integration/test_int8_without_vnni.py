"""The int8 ONNX models on an x86 CPU without VNNI, emulated, so that any x86 machine proves it.

ONNX Runtime's integer kernels differ by CPU: without VNNI (AVX2 only) it multiplies uint8 by
int8 with VPMADDUBSW, whose int16 sums saturate; the shipped files have uint8 weights, whose
kernels cannot (scripts/quantize_models.py). tests/int8_outputs.py runs the int8 detectors and
embedder under `qemu-x86_64-static -cpu Haswell` (called by name: no binfmt registration
needed). The full-range detector's faces must pass test_recognition.py's bounds against fp32,
and every output must match this machine's int8 run: integer arithmetic is exact when nothing
saturates, so a VNNI machine and an AVX2 one compute the same.
"""

from __future__ import annotations

import json
import platform
import shutil
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from paths import TESTS
from recognition_helpers import analyzer, assert_int8_face_agrees

from edge.backends import open_session
from edge.config.recognition import DetectorConfig
from edge.pipeline.detect import FaceDetector
from edge.pipeline.images import read_image
from edge.samples import OTHER_PERSON, SAME_PERSON
from edge.types import Detection

QEMU = shutil.which("qemu-x86_64-static")
SAMPLES = (*SAME_PERSON, OTHER_PERSON)

pytestmark = [
    pytest.mark.skipif(
        platform.machine() != "x86_64",
        reason=f"qemu-x86_64-static emulates an x86 CPU without VNNI: needs an x86_64 host, "
        f"this is {platform.machine()}",
    ),
    pytest.mark.skipif(
        QEMU is None, reason="qemu-x86_64-static not found (apt-get install qemu-user-static)"
    ),
]


@dataclass(frozen=True)
class Emulated:
    cpu: dict[str, bool]
    detections: dict[str, dict[str, list[Detection]]]  # by model, then by photo
    embeddings: np.ndarray  # of the aligned faces of SAMPLES, in order
    faces: list[np.ndarray]


def _detection(data: dict[str, Any]) -> Detection:
    x1, y1, x2, y2 = data["box"]
    return Detection((x1, y1, x2, y2), data["score"], np.array(data["keypoints"], np.float32))


@pytest.fixture(scope="module")
def haswell(tmp_path_factory: pytest.TempPathFactory) -> Emulated:
    work = tmp_path_factory.mktemp("haswell")
    core = analyzer("onnx")
    faces = []
    for path in SAMPLES:
        image = read_image(path)
        (aligned,) = core.align(image, core.detect(image))
        faces.append(aligned.image)
    np.save(work / "faces.npy", np.stack(faces))
    assert QEMU is not None
    result = subprocess.run(
        [
            QEMU,
            "-cpu",
            "Haswell",
            sys.executable,  # the venv's own path, not its target: the venv stays in use
            str(TESTS / "int8_outputs.py"),
            str(work / "faces.npy"),
            str(work / "embeddings.npy"),
        ],
        capture_output=True,
        text=True,
        timeout=900,  # about 15 s of CPU; generous for a loaded 2-core machine
    )
    assert result.returncode == 0, result.stderr[-3000:]
    printed = json.loads(result.stdout)
    return Emulated(
        cpu=printed["cpu"],
        detections={
            model: {name: [_detection(face) for face in found] for name, found in photos.items()}
            for model, photos in printed["detections"].items()
        },
        embeddings=np.load(work / "embeddings.npy"),
        faces=faces,
    )


def test_the_emulated_cpu_has_avx2_and_no_vnni(haswell: Emulated) -> None:
    assert haswell.cpu == {"AVX2": True, "AVX512F": False, "AVX512VNNI": False}


def test_int8_onnx_detector_finds_the_same_face_without_vnni(haswell: Emulated) -> None:
    for path in SAMPLES:
        image = read_image(path)
        (reference,) = analyzer("onnx").detect(image)
        (face,) = haswell.detections["full_range"][path.name]
        assert_int8_face_agrees(face, reference, path.name)


@pytest.mark.parametrize("model", ["full_range", "short_range"])
def test_int8_onnx_detectors_compute_what_they_compute_here(haswell: Emulated, model: str) -> None:
    detector = FaceDetector(
        open_session(f"blazeface_{model}", "onnx", 1, "int8"), DetectorConfig(model=model)
    )
    for path in SAMPLES:
        here = detector.detect(read_image(path))
        emulated = haswell.detections[model][path.name]
        assert len(emulated) == len(here), path.name
        for face, ours in zip(emulated, here, strict=True):
            moved = np.abs(face.keypoints - ours.keypoints).max() / ours.width
            # With saturating int8 weights Colin_Powell_0001 scored 0.13 (full range) and 0.20
            # (short range) below this machine.
            assert abs(face.score - ours.score) < 0.005, f"{path.name}: {face.score} {ours.score}"
            assert moved < 0.005, f"{path.name}: a keypoint moved by {moved:.1%} of the width"


def test_int8_onnx_embedder_gives_the_same_embeddings_without_vnni(haswell: Emulated) -> None:
    here = analyzer("onnx", "int8").embedder.embed(haswell.faces)
    cosines = np.sum(here * haswell.embeddings, axis=1)
    # Saturating int8 weights gave 0.991 to 0.995 against this machine's int8 embeddings.
    assert cosines.min() > 0.9999, cosines
