"""Typed configuration.

Every section rejects unknown keys, so a typo in the YAML file is an error rather than a setting
that silently does nothing. Secrets (MQTT password, API token) are never read from the file: they
come from the environment or from systemd credentials (see :func:`read_secret`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, model_validator

from edge.alerts.config import (
    DEFAULT_STATE_DIR,
    AlertContentConfig,
    AuditConfig,
    DeviceConfig,
    MqttConfig,
    OutboxConfig,
)
from edge.api.config import ApiConfig
from edge.config_section import Section
from edge.errors import ConfigError
from edge.fleet.config import SyncConfig
from edge.runtime_config import CaptureConfig, RunConfig, TrackerConfig
from edge.watchlist.config import WatchlistConfig


class RuntimeConfig(Section):
    backend: Literal["litert", "onnx"] = Field(
        "litert",
        description="Inference runtime: 'litert' (LiteRT with XNNPACK, the original .tflite "
        "files; the faster one on this project's 2-core x86 machine: 73 against 57 frames/s "
        "with one face, `edge bench speed`) or 'onnx' (ONNX Runtime; the only one that runs the "
        "int8 embedder). Run `edge bench speed` on the device to choose.",
    )
    threads: int = Field(
        2, ge=1, le=64, description="Threads per model session (intra-op). Match the cores."
    )


class DetectorConfig(Section):
    model: Literal["full_range", "short_range"] = Field(
        "full_range",
        description="BlazeFace variant: 'full_range' (192x192 input, faces up to ~5 m away) or "
        "'short_range' (128x128, faster, faces within ~2 m: selfie/doorbell distance).",
    )
    score_threshold: float = Field(
        0.5, gt=0.0, lt=1.0, description="Minimum detection confidence (after sigmoid)."
    )
    nms_iou: float = Field(
        0.3, gt=0.0, lt=1.0, description="IoU above which overlapping boxes merge (weighted NMS)."
    )
    min_face_px: int = Field(
        20, ge=1, description="Faces whose box is narrower than this (in frame pixels) are dropped."
    )
    max_faces: int = Field(32, ge=1, description="At most this many faces per frame, best first.")


class AlignConfig(Section):
    refiner: Literal["mesh", "none"] = Field(
        "mesh",
        description="Where the five alignment points come from. 'mesh' runs MediaPipe's face "
        "mesh on each face (+~4 ms per face; LFW 0.9923); 'none' uses BlazeFace's own keypoints "
        "(LFW 0.9887). See edge/pipeline/align.py for the measurements.",
    )


class QualityConfig(Section):
    min_quality: float = Field(
        0.25,
        ge=0.0,
        le=1.0,
        description="Faces whose quality score (0-1, from size, sharpness and pose) is below "
        "this are neither embedded nor matched.",
    )


class EmbedderConfig(Section):
    precision: Literal["fp32", "int8"] = Field(
        "fp32",
        description="MobileFaceNet weights: 'fp32' (original) or 'int8' (QDQ, ONNX Runtime "
        "only). fp32 is the default: int8 embeds 1.5x faster but makes more errors "
        "(edge/models/SOURCES.md).",
    )
    batch_size: int = Field(8, ge=1, le=64, description="Faces embedded per model call.")


class Config(Section):
    runtime: RuntimeConfig = RuntimeConfig()
    detector: DetectorConfig = DetectorConfig()
    align: AlignConfig = AlignConfig()
    quality: QualityConfig = QualityConfig()
    embedder: EmbedderConfig = EmbedderConfig()
    state_dir: Path = Field(
        DEFAULT_STATE_DIR,
        description="Writable directory for the outbox and audit log; overridden by --state-dir "
        "or $EDGE_STATE_DIR.",
    )
    device: DeviceConfig = DeviceConfig()
    mqtt: MqttConfig = MqttConfig()
    outbox: OutboxConfig = OutboxConfig()
    audit: AuditConfig = AuditConfig()
    alerts: AlertContentConfig = AlertContentConfig()
    watchlist: WatchlistConfig = WatchlistConfig()
    capture: CaptureConfig = CaptureConfig()
    tracker: TrackerConfig = TrackerConfig()
    run: RunConfig = RunConfig()
    sync: SyncConfig = SyncConfig()
    api: ApiConfig = ApiConfig()

    @model_validator(mode="after")
    def _int8_needs_onnx(self) -> Config:
        if self.embedder.precision == "int8" and self.runtime.backend != "onnx":
            raise ValueError(
                "embedder.precision 'int8' needs runtime.backend 'onnx' (LiteRT runs fp32 only)"
            )
        return self


def _one_line(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)


def config_from_dict(data: dict[str, Any]) -> Config:
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"invalid config: {_one_line(exc)}") from exc


def load_config(path: Path | None) -> Config:
    """Read a YAML config file; ``None`` gives the defaults."""
    if path is None:
        return Config()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"config {path} is not valid YAML: {exc}".splitlines()[0]) from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"config {path}: the top level must be a mapping")
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"invalid config {path}: {_one_line(exc)}") from exc


def read_secret(name: str) -> str | None:
    """A secret from systemd credentials (``$CREDENTIALS_DIRECTORY/<name>``) or the environment.

    ``name`` is the credential file name, e.g. ``mqtt_password``; the environment variable is
    ``EDGE_<NAME>`` in upper case. Credentials win, since they are the hardened path.
    """
    cred_dir = os.environ.get("CREDENTIALS_DIRECTORY")
    if cred_dir:
        cred = Path(cred_dir) / name
        if cred.is_file():
            return cred.read_text(encoding="utf-8").rstrip("\n")
    return os.environ.get(f"EDGE_{name.upper()}")
