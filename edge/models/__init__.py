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


@dataclass(frozen=True)
class ModelInfo:
    name: str
    source: str
    licence: str
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
