"""The int8 ONNX models' outputs on the bundled photos, as JSON, for test_int8_without_vnni.py.

    qemu-x86_64-static -cpu Haswell python tests/int8_outputs.py FACES.npy EMBEDDINGS.npy

Prints one JSON object: the CPU features numpy sees (so the caller can tell that the emulated
CPU has AVX2 and no VNNI) and the faces each int8 detector (full and short range) finds on each
bundled photo; writes the int8 embedder's embeddings of the aligned faces in FACES.npy to
EMBEDDINGS.npy. Only the int8 models run here: float ones run slowly under emulation, and the
caller runs them natively (their results do not depend on the x86 CPU).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from edge.backends import open_session
from edge.config import Config
from edge.config.recognition import DetectorConfig
from edge.pipeline.detect import FaceDetector
from edge.pipeline.embed import Embedder
from edge.pipeline.images import read_image
from edge.samples import OTHER_PERSON, SAME_PERSON

try:  # numpy reads the same CPUID bits by which ONNX Runtime picks its integer kernels
    from numpy._core._multiarray_umath import __cpu_features__
except ImportError:  # numpy 1.26
    from numpy.core._multiarray_umath import __cpu_features__

FEATURES = ("AVX2", "AVX512F", "AVX512VNNI")


def detections(model: str, threads: int) -> dict[str, list[dict[str, object]]]:
    """The int8 detector's faces on each bundled photo: the pass FaceAnalyzer.detect makes on
    photos this small."""
    config = DetectorConfig(model=model)
    detector = FaceDetector(open_session(f"blazeface_{model}", "onnx", threads, "int8"), config)
    return {
        path.name: [
            {
                "box": [float(v) for v in face.box],
                "score": float(face.score),
                "keypoints": face.keypoints.tolist(),
            }
            for face in detector.detect(read_image(path))
        ]
        for path in (*SAME_PERSON, OTHER_PERSON)
    }


def main() -> int:
    faces_file, embeddings_file = Path(sys.argv[1]), Path(sys.argv[2])
    threads = Config().runtime.threads
    embedder = Embedder(open_session("mobilefacenet", "onnx", threads, "int8"), 16)
    np.save(embeddings_file, embedder.embed(list(np.load(faces_file))))
    cpu = {name: bool(__cpu_features__.get(name)) for name in FEATURES}
    models = {model: detections(model, threads) for model in ("full_range", "short_range")}
    print(json.dumps({"cpu": cpu, "detections": models}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
