"""LiteRT (TensorFlow Lite) runtime: ``ai-edge-litert``, or the older ``tflite-runtime``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from edge.backends.base import FloatArray
from edge.errors import BackendError
from edge.system.native import native_stderr_silenced


def _interpreter_class() -> Any:
    try:
        from ai_edge_litert.interpreter import Interpreter

        return Interpreter
    except ImportError:
        pass
    try:
        from tflite_runtime.interpreter import Interpreter

        return Interpreter
    except ImportError as exc:
        raise BackendError(
            "backend 'litert' needs ai-edge-litert (or tflite-runtime); pip install ai-edge-litert"
        ) from exc


class LiteRTSession:
    def __init__(self, path: Path, threads: int) -> None:
        try:
            with native_stderr_silenced():
                self._interpreter = _interpreter_class()(model_path=str(path), num_threads=threads)
                self._interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise BackendError(f"LiteRT cannot load {path.name}: {exc}") from exc
        (self._input,) = self._interpreter.get_input_details()
        self._outputs = self._interpreter.get_output_details()
        self._batch = int(self._input["shape"][0])
        # A fully quantized model may take or give int8 tensors: the session stays float to its
        # callers, quantizing the input and dequantizing the outputs with the model's own scales.
        self._to_model = _quantizer(self._input)
        self._from_model = [_dequantizer(out) for out in self._outputs]

    @property
    def input_hw(self) -> tuple[int, int]:
        shape = self._input["shape"]
        return int(shape[1]), int(shape[2])

    def run(self, batch: FloatArray) -> list[FloatArray]:
        # LiteRT shapes are fixed at conversion and some graphs bake the batch into a Reshape
        # (MobileFaceNet: 2), so run in chunks of the native batch, padding the last one.
        chunks: list[list[FloatArray]] = []
        for start in range(0, len(batch), self._batch):
            chunk = batch[start : start + self._batch]
            padding = self._batch - len(chunk)
            if padding:
                chunk = np.concatenate([chunk, np.zeros((padding, *chunk.shape[1:]), chunk.dtype)])
            outputs = self._invoke(chunk)
            chunks.append([out[: len(out) - padding] for out in outputs])
        return [np.concatenate(parts) for parts in zip(*chunks, strict=True)]

    def _invoke(self, chunk: FloatArray) -> list[FloatArray]:
        try:
            self._interpreter.set_tensor(self._input["index"], self._to_model(chunk))
            self._interpreter.invoke()
        except (ValueError, RuntimeError) as exc:
            raise BackendError(f"LiteRT inference failed: {exc}") from exc
        # get_tensor copies; the interpreter reuses its buffers on the next invoke.
        return [
            convert(self._interpreter.get_tensor(out["index"]))
            for out, convert in zip(self._outputs, self._from_model, strict=True)
        ]


Converter = Callable[[npt.NDArray[Any]], npt.NDArray[Any]]


def _quantizer(detail: dict[str, Any]) -> Converter:
    """float32 -> the tensor's type (a copy to quantized integers when it is int8/uint8)."""
    dtype = np.dtype(detail["dtype"])
    if dtype == np.float32:
        return np.ascontiguousarray
    scale, zero_point = detail["quantization"]
    info = np.iinfo(dtype)

    def quantize(values: npt.NDArray[Any]) -> npt.NDArray[Any]:
        scaled = np.round(values / scale) + zero_point
        return np.ascontiguousarray(np.clip(scaled, info.min, info.max).astype(dtype))

    return quantize


def _dequantizer(detail: dict[str, Any]) -> Converter:
    """The tensor's type -> float32."""
    if np.dtype(detail["dtype"]) == np.float32:
        return lambda values: values
    scale, zero_point = detail["quantization"]

    def dequantize(values: npt.NDArray[Any]) -> npt.NDArray[Any]:
        return np.asarray((values.astype(np.float32) - zero_point) * scale, dtype=np.float32)

    return dequantize
