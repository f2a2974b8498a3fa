"""Static int8 (QDQ) quantization of mobilefacenet.onnx, calibrated on aligned LFW faces.

Used by scripts/fetch-models --lfw DIR. The calibration faces come from LFW images that no
pair in pairs.txt uses, so the accuracy benchmark never sees its own calibration data.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import numpy as np

CALIBRATION_FACES = 200
# Kept in float: the first convolution (it sees raw pixels, whose range int8 clips badly) and the
# final linear projection to the embedding (its output is the product; errors there land 1:1).
FLOAT_NODES_MATCH = ("Conv2d_0/", "Logits/")


def calibration_faces(lfw: Path, count: int = CALIBRATION_FACES) -> list[np.ndarray]:
    from edge.bench.lfw import read_pairs
    from edge.config import Config
    from edge.pipeline.analyzer import FaceAnalyzer
    from edge.pipeline.capture import read_image

    in_pairs = {key for p in read_pairs(lfw / "pairs.txt") for key in (p.first, p.second)}
    candidates = sorted(
        path
        for path in (lfw / "images").glob("*/*.jpg")
        if (path.parent.name, int(path.stem.rsplit("_", 1)[1])) not in in_pairs
    )
    random.Random(0).shuffle(candidates)
    analyzer = FaceAnalyzer(Config())
    faces = []
    for path in candidates:
        image = read_image(path)
        detections = analyzer.detect(image)
        if detections:
            faces.append(analyzer.align(image, detections[:1])[0].image)
        if len(faces) == count:
            break
    return faces


def quantize_embedder(source: Path, target: Path, lfw: Path) -> None:
    import onnx
    from onnx import version_converter
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    from edge.pipeline.embed import preprocess

    faces = calibration_faces(lfw)

    class Reader(CalibrationDataReader):  # type: ignore[misc]
        def __init__(self) -> None:
            self._batches: Iterator[dict[str, np.ndarray]] = (
                {"input": preprocess(faces[i : i + 8])} for i in range(0, len(faces), 8)
            )

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self._batches, None)

    # Per-channel weight scales need DequantizeLinear's axis attribute: opset 13 or later.
    model = version_converter.convert_version(onnx.load(str(source)), 13)
    excluded = [n.name for n in model.graph.node if any(m in n.name for m in FLOAT_NODES_MATCH)]
    opset13 = target.with_suffix(".opset13.onnx")
    onnx.save(model, str(opset13))
    quantize_static(
        str(opset13),
        str(target),
        Reader(),
        quant_format=QuantFormat.QDQ,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        per_channel=True,
        calibrate_method=CalibrationMethod.MinMax,
        nodes_to_exclude=excluded,
        op_types_to_quantize=["Conv"],
    )
    opset13.unlink()
