"""LiteRT (TensorFlow Lite) runtime: ``ai-edge-litert``, or the older ``tflite-runtime``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edge.backends.base import FloatArray
from edge.errors import BackendError


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
            self._interpreter = _interpreter_class()(model_path=str(path), num_threads=threads)
            self._interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise BackendError(f"LiteRT cannot load {path.name}: {exc}") from exc
        (self._input,) = self._interpreter.get_input_details()
        self._outputs = self._interpreter.get_output_details()
        self._batch = int(self._input["shape"][0])

    @property
    def input_hw(self) -> tuple[int, int]:
        shape = self._input["shape"]
        return int(shape[1]), int(shape[2])

    def run(self, batch: FloatArray) -> list[FloatArray]:
        if batch.shape[0] != self._batch:
            # LiteRT tensors have static shapes; reallocating is cheap next to a model run.
            self._interpreter.resize_tensor_input(self._input["index"], list(batch.shape))
            self._interpreter.allocate_tensors()
            self._batch = batch.shape[0]
        try:
            self._interpreter.set_tensor(self._input["index"], np.ascontiguousarray(batch))
            self._interpreter.invoke()
        except (ValueError, RuntimeError) as exc:
            raise BackendError(f"LiteRT inference failed: {exc}") from exc
        return [self._interpreter.get_tensor(out["index"]) for out in self._outputs]
