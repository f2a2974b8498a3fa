"""The int8 ONNX models' outputs on the bundled photos, as JSON, for test_int8_without_vnni.py.

    qemu-x86_64-static -cpu Haswell python tests/int8_outputs.py FACES.npy EMBEDDINGS.npy

Prints one JSON object: the CPU features numpy sees (so the caller can tell that the emulated
CPU has AVX2 and no VNNI) and the int8 full-range detector's faces on each bundled photo (the
same pass as FaceAnalyzer.detect on these small photos); writes the int8 embedder's embeddings
of the aligned faces in FACES.npy to EMBEDDINGS.npy. Nothing in float is computed here: under
emulation float SIMD is slow, and only the integer kernels differ between CPUs.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import numpy as np

from edge.backends import open_session
from edge.config import Config
from edge.pipeline.capture import read_image
from edge.pipeline.detect import FaceDetector
from edge.pipeline.embed import Embedder
from edge.samples import OTHER_PERSON, SAME_PERSON

# ONNX Runtime picks its integer kernels by these; numpy reads the same CPUID bits.
FEATURES = ("AVX2", "AVX512F", "AVX512VNNI")


def main() -> int:
    faces_file, embeddings_file = Path(sys.argv[1]), Path(sys.argv[2])
    config = Config()
    threads = config.runtime.threads
    detector = FaceDetector(
        open_session(f"blazeface_{config.detector.model}", "onnx", threads, "int8"),
        config.detector,
    )
    detections = {
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
    embedder = Embedder(open_session("mobilefacenet", "onnx", threads, "int8"), 16)
    np.save(embeddings_file, embedder.embed(list(np.load(faces_file))))
    cpu = importlib.import_module("numpy._core._multiarray_umath").__cpu_features__
    print(
        json.dumps(
            {"cpu": {name: bool(cpu.get(name)) for name in FEATURES}, "detections": detections}
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
