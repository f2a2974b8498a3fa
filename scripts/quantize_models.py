"""The reduced-precision model variants, derived from the float files (scripts/fetch-models).

LiteRT, with ai-edge-quantizer on the .tflite flatbuffers (litert_graph.py prepares them):
- mobilefacenet.fp16.tflite: PReLU fused, float16 weights, float compute.
- mobilefacenet.int8.tflite: PReLU fused, dynamic range: int8 per-channel weights on the
  convolutions, float activations; the first convolution (raw pixels) and the depthwise ones
  stay float (quantized depthwise weights cost 0.012 of mean cosine to fp32 and run slower on
  XNNPACK; the first convolution is 7 KB and moves LFW by 5 pairs).
- blazeface_*.int8.tflite: static int8 (per-channel weights, per-tensor activations) calibrated
  on LFW images; the output heads stay float.                                       (--lfw)
ONNX Runtime, with onnxruntime.quantization (static QDQ, opset 13):
- mobilefacenet.int8.onnx: per-channel uint8 weights (U8U8, below), uint8 activations on the
  convolutions, MinMax on 1,000 aligned LFW faces; first convolution, depthwise convolutions
  and the Logits head stay float.                                                    (--lfw)
- blazeface_*.int8.onnx: the same on the convolutions, output heads float.           (--lfw)

Why uint8 weights: with int8 weights (U8S8, ONNX Runtime's usual choice) an x86 CPU without VNNI
(AVX2 only, as the project's CI machine) multiplies with VPMADDUBSW, which adds each pair of
u8*s8 products into an int16 and saturates (255 * 127 * 2 > 32767); with VNNI (VPDPBUSD
accumulates into int32) and on ARM it does not, so one file gave other outputs on such a CPU.
Under `qemu-x86_64-static -cpu Haswell` the U8S8 full-range detector's scores on LFW's 3,811
pair images fell by 0.089 on average, 159 needed the second look (13 with fp32) and LFW fell to
0.9857 (0.9920 with VNNI); the U8S8 embedder's embeddings differed from the VNNI machine's by
cosine 0.992 on average over 600 LFW faces (lowest 0.968). U8U8 kernels widen to 16 bits before
multiplying and cannot saturate: emulated, every detection is identical to the VNNI machine's
and every embedding equal to cosine 1.00000. The price is time where U8S8 has its fast
instruction (on the VNNI machine the detector takes 3.3 ms a call against 2.3, the embedder 4.7
ms a face against 4.1). ONNX Runtime's other remedy, reduce_range (7-bit int8 weights: no
saturation, no time), lowered the detector's scores (by 0.007 on average over 200 LFW images; a
bundled photo's from 0.749 in fp32 to 0.682) and the embedder's worst cosine to fp32 on LFW
(0.945 against 0.964).

Calibration data never comes from an image that an LFW pair uses, so the accuracy benchmark
never sees it, and it is fed in chunks (ONNX: batches of 16 faces; the MinMax collector keeps
only per-tensor minima and maxima, so memory stays flat however many faces are used).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from litert_graph import quantizable

EMBEDDER_CALIBRATION_FACES = 1000
DETECTOR_CALIBRATION_IMAGES = 200
CHUNK = 16
# Kept in float, by node name: the first convolution (LiteRT) and the Logits head too (ONNX).
LITERT_FLOAT_NODES = "Conv2d_0/"
ONNX_FLOAT_NODES = ("Conv2d_0/", "Logits/")
DETECTOR_HEADS = ("classifier_face", "regressor_face")
DETECTOR_INPUT = {"full_range": 192, "short_range": 128}


def _calibration_images(lfw: Path) -> list[Path]:
    """LFW images that no pair in pairs.txt uses, in a fixed shuffled order."""
    from edge.bench.lfw import read_pairs

    in_pairs = {key for p in read_pairs(lfw / "pairs.txt") for key in (p.first, p.second)}
    candidates = sorted(
        path
        for path in (lfw / "images").glob("*/*.jpg")
        if (path.parent.name, int(path.stem.rsplit("_", 1)[1])) not in in_pairs
    )
    random.Random(0).shuffle(candidates)
    return candidates


def calibration_faces(lfw: Path, count: int = EMBEDDER_CALIBRATION_FACES) -> list[np.ndarray]:
    """Aligned 112x112 faces as the default pipeline makes them (the best face of each image)."""
    from edge.config import Config
    from edge.pipeline.analyzer import FaceAnalyzer
    from edge.pipeline.images import read_image

    analyzer = FaceAnalyzer(Config())
    faces = []
    for path in _calibration_images(lfw):
        image = read_image(path)
        detections = analyzer.detect(image)
        if detections:
            faces.append(analyzer.align(image, detections[:1])[0].image)
        if len(faces) == count:
            break
    return faces


def detector_inputs(lfw: Path, size: int, count: int = DETECTOR_CALIBRATION_IMAGES) -> list[Any]:
    """Letterboxed detector inputs: LFW images alone, and in 2x2 and 3x3 mosaics (faces of
    several sizes in one input)."""
    from edge.pipeline.detect import letterbox
    from edge.pipeline.images import read_image

    paths = _calibration_images(lfw)
    inputs = []
    for i in range(count):
        side = (1, 1, 2, 3)[i % 4]
        images = [read_image(paths[(i * 9 + j) % len(paths)]) for j in range(side * side)]
        rows = [np.concatenate(images[r * side : (r + 1) * side], axis=1) for r in range(side)]
        inputs.append(letterbox(np.concatenate(rows, axis=0), size)[0])
    return inputs


# --- LiteRT -------------------------------------------------------------------------------


def _litert_quantize(float_model: bytes, configure: Any, calibration: list[Any] | None) -> bytes:
    from ai_edge_quantizer import quantizer

    tool = quantizer.Quantizer(bytearray(float_model))
    configure(tool)
    result = None
    if calibration is not None:
        from ai_edge_litert.interpreter import Interpreter

        runner = Interpreter(model_content=float_model).get_signature_runner()
        (name,) = runner.get_input_details()
        samples = [{name: x} for x in calibration]
        result = tool.calibrate({"serving_default": samples}, num_threads=1)
    quantized = tool.quantize(result, enable_progress_bar=False, enable_progress_report=False)
    return bytes(quantized.quantized_model)


def embedder_litert(out: Path) -> None:
    """mobilefacenet.fp16.tflite and mobilefacenet.int8.tflite (no calibration data needed)."""
    from ai_edge_quantizer import qtyping

    float_model = quantizable((out / "mobilefacenet.tflite").read_bytes())
    half = qtyping.OpQuantizationConfig(
        weight_tensor_config=qtyping.TensorQuantizationConfig(
            num_bits=16, dtype=qtyping.TensorDataType.FLOAT
        ),
        compute_precision=qtyping.ComputePrecision.FLOAT,
        explicit_dequantize=True,
    )

    def fp16(tool: Any) -> None:
        for op in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            tool.update_quantization_recipe(
                regex=".*", operation_name=op, op_config=half, algorithm_key="float_casting"
            )

    def dynamic_int8(tool: Any) -> None:
        tool.add_dynamic_config(regex=".*", operation_name="CONV_2D", num_bits=8)
        tool.update_quantization_recipe(
            regex=LITERT_FLOAT_NODES, operation_name="*", algorithm_key="no_quantize"
        )

    (out / "mobilefacenet.fp16.tflite").write_bytes(_litert_quantize(float_model, fp16, None))
    (out / "mobilefacenet.int8.tflite").write_bytes(
        _litert_quantize(float_model, dynamic_int8, None)
    )


def detectors_litert(out: Path, lfw: Path) -> None:
    from ai_edge_quantizer import recipe

    for model, size in DETECTOR_INPUT.items():
        float_model = quantizable((out / f"blazeface_{model}.tflite").read_bytes())

        def static_int8(tool: Any) -> None:
            tool.load_quantization_recipe(recipe.static_wi8_ai8())
            for head in DETECTOR_HEADS:
                tool.update_quantization_recipe(
                    regex=head, operation_name="*", algorithm_key="no_quantize"
                )

        quantized = _litert_quantize(float_model, static_int8, detector_inputs(lfw, size))
        (out / f"blazeface_{model}.int8.tflite").write_bytes(quantized)


# --- ONNX Runtime ---------------------------------------------------------------------------


def _onnx_quantize(source: Path, target: Path, batches: Iterator[Any], float_nodes: Any) -> None:
    """Static QDQ quantization of the convolutions; ``float_nodes(graph)`` names those kept."""
    import onnx
    from onnx import version_converter
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    class Reader(CalibrationDataReader):  # type: ignore[misc]
        def get_next(self) -> dict[str, np.ndarray] | None:
            batch = next(batches, None)
            return None if batch is None else {"input": batch}

    # Per-channel weight scales need DequantizeLinear's axis attribute: opset 13 or later.
    model = version_converter.convert_version(onnx.load(str(source)), 13)
    opset13 = target.with_suffix(".opset13.onnx")
    onnx.save(model, str(opset13))
    quantize_static(
        str(opset13),
        str(target),
        Reader(),
        quant_format=QuantFormat.QDQ,
        activation_type=QuantType.QUInt8,
        # Not QInt8: u8 x s8 saturates on x86 without VNNI (module docstring).
        weight_type=QuantType.QUInt8,
        per_channel=True,
        calibrate_method=CalibrationMethod.MinMax,
        nodes_to_exclude=float_nodes(model.graph),
        op_types_to_quantize=["Conv"],
    )
    opset13.unlink()


def _is_depthwise(node: Any) -> bool:
    return node.op_type == "Conv" and any(a.name == "group" and a.i > 1 for a in node.attribute)


def embedder_onnx(out: Path, lfw: Path) -> None:
    from edge.pipeline.embed import preprocess

    faces = calibration_faces(lfw)
    batches = (preprocess(faces[i : i + CHUNK]) for i in range(0, len(faces), CHUNK))

    def float_nodes(graph: Any) -> list[str]:
        return [
            node.name
            for node in graph.node
            if _is_depthwise(node) or any(m in node.name for m in ONNX_FLOAT_NODES)
        ]

    _onnx_quantize(
        out / "mobilefacenet.onnx", out / "mobilefacenet.int8.onnx", batches, float_nodes
    )


def detectors_onnx(out: Path, lfw: Path) -> None:
    def float_nodes(graph: Any) -> list[str]:
        return [node.name for node in graph.node if any(h in node.name for h in DETECTOR_HEADS)]

    for model, size in DETECTOR_INPUT.items():
        batches = iter(detector_inputs(lfw, size))
        target = out / f"blazeface_{model}.int8.onnx"
        _onnx_quantize(out / f"blazeface_{model}.onnx", target, batches, float_nodes)


def derive(out: Path, lfw: Path | None) -> None:
    """Every variant into ``out`` (which holds the float files); calibrated ones need ``lfw``."""
    embedder_litert(out)
    if lfw is not None:
        detectors_litert(out, lfw)
        embedder_onnx(out, lfw)
        detectors_onnx(out, lfw)
