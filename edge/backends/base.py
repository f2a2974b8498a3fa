"""The one interface every runtime implements, and the registry that picks one by name.

All shipped models take one NHWC float32 tensor and return a tuple of arrays, so the interface
is a single ``run``. The ONNX files were converted to accept the same NHWC layout as the .tflite
originals (scripts/fetch-models), so the calling code never knows which runtime it talks to.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt

from edge.errors import BackendError
from edge.models import verified_path

FloatArray = npt.NDArray[np.float32]


class InferenceSession(Protocol):
    """A loaded model. ``run`` takes a batch (N, H, W, C) and returns the outputs in model order."""

    @property
    def input_hw(self) -> tuple[int, int]: ...

    def run(self, batch: FloatArray) -> list[FloatArray]: ...


SessionFactory = Callable[[Path, int], InferenceSession]


def _litert(path: Path, threads: int) -> InferenceSession:
    from edge.backends.litert import LiteRTSession

    return LiteRTSession(path, threads)


def _onnx(path: Path, threads: int) -> InferenceSession:
    from edge.backends.onnx import OnnxSession

    return OnnxSession(path, threads)


# name -> (file suffix, factory). Factories import their runtime lazily so that a device only
# needs the runtime it is configured for.
BACKENDS: dict[str, tuple[str, SessionFactory]] = {
    "litert": (".tflite", _litert),
    "onnx": (".onnx", _onnx),
}


def open_session(model_stem: str, backend: str, threads: int) -> InferenceSession:
    """Load ``<model_stem><suffix>`` from the shipped models for ``backend``, hash-checked."""
    if backend not in BACKENDS:
        raise BackendError(f"unknown backend {backend!r}; choose one of {sorted(BACKENDS)}")
    suffix, factory = BACKENDS[backend]
    return factory(verified_path(model_stem + suffix), threads)
