"""The one interface every runtime implements, and the registry that picks one by name.

All shipped models take one NHWC float32 tensor and return a tuple of arrays, so the interface
is a single ``run``. The ONNX files were converted to accept the same NHWC layout as the .tflite
originals (scripts/fetch-models), so the calling code never knows which runtime it talks to.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

import numpy as np
import numpy.typing as npt

from edge.errors import BackendError, ModelError
from edge.models import RUNTIME_SUFFIX, shipped_precisions, variant_file, verified_path

FloatArray = npt.NDArray[np.float32]


class InferenceSession(Protocol):
    """A loaded model. ``run`` takes a batch (N, H, W, C) and returns the outputs in model order."""

    @property
    def input_hw(self) -> tuple[int, int]: ...

    def run(self, batch: FloatArray) -> list[FloatArray]: ...


@dataclass(frozen=True)
class Placement:
    """Where a session runs. ``providers`` (ONNX Runtime only): 'cpu', or 'auto' for TensorRT or
    CUDA when the installed onnxruntime offers them; ``engine_cache`` keeps TensorRT's built
    engines across restarts."""

    threads: int
    providers: Literal["cpu", "auto"] = "cpu"
    engine_cache: Path | None = None


SessionFactory = Callable[[Path, Placement], InferenceSession]


def _litert(path: Path, placement: Placement) -> InferenceSession:
    from edge.backends.litert import LiteRTSession

    return LiteRTSession(path, placement.threads)


def _onnx(path: Path, placement: Placement) -> InferenceSession:
    from edge.backends.onnx import OnnxSession

    return OnnxSession(path, placement)


# name -> factory; the file suffix is edge.models.RUNTIME_SUFFIX. Factories import their runtime
# lazily so that a device only needs the runtime it is configured for.
BACKENDS: dict[str, SessionFactory] = {"litert": _litert, "onnx": _onnx}
assert set(BACKENDS) == set(RUNTIME_SUFFIX)


def open_session(
    model_stem: str, backend: str, placement: Placement | int, precision: str = "fp32"
) -> InferenceSession:
    """Load ``model_stem`` at ``precision`` from the shipped models for ``backend``, hash-checked.
    ``placement`` may be a plain thread count (CPU)."""
    if backend not in BACKENDS:
        raise BackendError(f"unknown backend {backend!r}; choose one of {sorted(BACKENDS)}")
    if precision not in shipped_precisions(model_stem, backend):
        raise ModelError(
            f"{model_stem} has no {precision} model for backend {backend!r} (shipped: "
            f"{', '.join(shipped_precisions(model_stem, backend)) or 'none'})"
        )
    if isinstance(placement, int):
        placement = Placement(placement)
    return BACKENDS[backend](verified_path(variant_file(model_stem, backend, precision)), placement)
