"""The model files shipped with the package, and their integrity check.

``models.json`` records each file's origin, licence and sha256 (human-readable form:
SOURCES.md). A file is hashed when it is first loaded in a process; a missing or altered file
is a :class:`ModelError`, never a silent fallback.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from edge.errors import ModelError

MODELS_DIR = Path(__file__).resolve().parent
# The embedding model family. Its shipped variants (tflite, onnx, fp16, int8) all derive from the
# original weights, whose sha256 pins the model: their embeddings interchange.
EMBEDDING_MODEL = "mobilefacenet"
EMBEDDING_SOURCE_FILE = f"{EMBEDDING_MODEL}.tflite"
# The file suffix each runtime loads, and the precisions a model may ship in: fp32 is the plain
# file ('mobilefacenet.tflite'), the others carry their name ('mobilefacenet.int8.tflite').
RUNTIME_SUFFIX = {"litert": ".tflite", "onnx": ".onnx"}
PRECISIONS = ("fp32", "fp16", "int8")


@dataclass(frozen=True)
class ModelInfo:
    name: str
    source: str
    licence: str
    sha256: str


@dataclass(frozen=True)
class ModelPin:
    """The embedding model a list was made with: templates only compare within one model."""

    name: str
    sha256: str


@cache
def catalog() -> dict[str, ModelInfo]:
    data = json.loads((MODELS_DIR / "models.json").read_text(encoding="utf-8"))
    return {
        name: ModelInfo(name, entry["source"], entry["licence"], entry["sha256"])
        for name, entry in data["models"].items()
    }


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def variant_file(stem: str, backend: str, precision: str) -> str:
    """The file name of model ``stem`` at ``precision`` for ``backend`` (which may not ship)."""
    return stem + ("" if precision == "fp32" else f".{precision}") + RUNTIME_SUFFIX[backend]


def shipped_precisions(stem: str, backend: str) -> list[str]:
    """The precisions in which ``stem`` ships for ``backend``, per models.json."""
    return [p for p in PRECISIONS if variant_file(stem, backend, p) in catalog()]


def verified_path(name: str, models_dir: Path = MODELS_DIR) -> Path:
    """Path of a shipped model file after checking it against its recorded sha256."""
    info = catalog().get(name)
    if info is None:
        raise ModelError(f"unknown model file {name!r} (not in models.json)")
    path = models_dir / name
    if not path.is_file():
        raise ModelError(f"model file missing: {path} (reinstall the package)")
    actual = file_sha256(path)
    if actual != info.sha256:
        raise ModelError(
            f"model file corrupt: {path} has sha256 {actual[:12]}..., expected "
            f"{info.sha256[:12]}... (reinstall the package or run scripts/fetch-models)"
        )
    return path


def embedding_pin() -> ModelPin:
    """The pin of the embedding model this build runs, from the catalogue (no model loaded)."""
    return ModelPin(EMBEDDING_MODEL, catalog()[EMBEDDING_SOURCE_FILE].sha256)


def embedding_model_id(precision: str) -> str:
    """The ``model_id`` that alerts and the device status report, e.g. 'mobilefacenet-fp32'."""
    return f"{EMBEDDING_MODEL}-{precision}"
