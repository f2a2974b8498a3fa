"""ONNX Runtime (CPU execution provider)."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import numpy as np

from edge.backends.base import FloatArray
from edge.errors import BackendError


class OnnxSession:
    def __init__(self, path: Path, threads: int) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise BackendError("backend 'onnx' needs onnxruntime; pip install onnxruntime") from exc
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # the converted graphs trigger harmless warnings
        # Idle worker threads spin by default; on a small device the capture and alert threads
        # need those cycles, and under contention spinning made every stage 2-3x slower here.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self._session = ort.InferenceSession(
                str(path), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # ORT raises its own untyped pybind errors
            raise BackendError(f"ONNX Runtime cannot load {path.name}: {exc}") from exc
        (model_input,) = self._session.get_inputs()
        self._input_name: str = model_input.name
        self._hw = (int(model_input.shape[1]), int(model_input.shape[2]))

    @property
    def input_hw(self) -> tuple[int, int]:
        return self._hw

    def run(self, batch: FloatArray) -> list[FloatArray]:
        try:
            outputs = self._session.run(None, {self._input_name: np.ascontiguousarray(batch)})
        except Exception as exc:
            raise BackendError(f"ONNX Runtime inference failed: {exc}") from exc
        return cast(list[FloatArray], outputs)
