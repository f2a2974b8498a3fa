"""ONNX Runtime: the CPU execution provider, or TensorRT / CUDA where the installed onnxruntime
offers them (a Jetson's onnxruntime-gpu build) and ``runtime.providers`` is 'auto'."""

from __future__ import annotations

import logging
from functools import cache
from pathlib import Path
from typing import Any, cast

import numpy as np

from edge.backends.base import FloatArray, Placement
from edge.errors import BackendError

log = logging.getLogger(__name__)

CPU = "CPUExecutionProvider"
# Best first. TensorRT builds an engine per model on first load (minutes on a Jetson), so its
# engines are cached; CUDA needs nothing.
ACCELERATED = ("TensorrtExecutionProvider", "CUDAExecutionProvider")


def _runtime() -> Any:
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise BackendError("backend 'onnx' needs onnxruntime; pip install onnxruntime") from exc
    return ort


@cache
def accelerated_providers(available: tuple[str, ...]) -> tuple[str, ...]:
    """The accelerated providers on offer, best first. Cached per provider list, so that the
    fallback to the CPU is logged once per process, not once per model."""
    chosen = tuple(name for name in ACCELERATED if name in available)
    if not chosen:
        log.warning(
            "runtime.providers 'auto': this onnxruntime offers no TensorRT or CUDA execution "
            "provider (only %s); running on the CPU",
            ", ".join(available) or "none",
        )
    return chosen


def providers_for(placement: Placement, available: tuple[str, ...]) -> list[Any]:
    """ONNX Runtime's ``providers`` argument: accelerated ones first (with options), CPU last."""
    if placement.providers == "cpu":
        return [CPU]
    chosen: list[Any] = []
    for name in accelerated_providers(available):
        if name == "TensorrtExecutionProvider" and placement.engine_cache is not None:
            options = {
                "trt_engine_cache_enable": True,
                "trt_engine_cache_path": str(placement.engine_cache),
            }
            chosen.append((name, options))
        else:
            chosen.append(name)
    return [*chosen, CPU]


class OnnxSession:
    def __init__(self, path: Path, placement: Placement) -> None:
        ort = _runtime()
        options = ort.SessionOptions()
        options.intra_op_num_threads = placement.threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # the converted graphs trigger harmless warnings
        # Idle worker threads spin by default; on a small device the capture and alert threads
        # need those cycles, and under contention spinning made every stage 2-3x slower here.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        providers = providers_for(placement, tuple(ort.get_available_providers()))
        if placement.engine_cache is not None and len(providers) > 1:
            try:
                placement.engine_cache.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise BackendError(
                    f"cannot create the TensorRT engine cache {placement.engine_cache}: "
                    f"{exc.strerror} (state_dir must be writable)"
                ) from exc
        try:
            self._session = ort.InferenceSession(
                str(path), sess_options=options, providers=providers
            )
        except Exception as exc:  # ORT raises its own untyped pybind errors
            raise BackendError(f"ONNX Runtime cannot load {path.name}: {exc}") from exc
        (model_input,) = self._session.get_inputs()
        self._input_name: str = model_input.name
        self._hw = (int(model_input.shape[1]), int(model_input.shape[2]))

    @property
    def providers(self) -> list[str]:
        """The providers this session actually runs on, best first."""
        return cast(list[str], self._session.get_providers())

    @property
    def input_hw(self) -> tuple[int, int]:
        return self._hw

    def run(self, batch: FloatArray) -> list[FloatArray]:
        try:
            outputs = self._session.run(None, {self._input_name: np.ascontiguousarray(batch)})
        except Exception as exc:
            raise BackendError(f"ONNX Runtime inference failed: {exc}") from exc
        return cast(list[FloatArray], outputs)
