"""The config root: every section, the YAML loader and the cross-section checks.

Every section rejects unknown keys, so a typo in the YAML file is an error rather than a setting
that silently does nothing. Secrets (MQTT password, API token) are never read from the file: they
come from the environment or from systemd credentials (:mod:`edge.config.secrets`).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, model_validator

from edge.config.alerts import AlertsConfig, AuditConfig, OutboxConfig
from edge.config.api import ApiConfig
from edge.config.base import Section
from edge.config.capture import CaptureConfig
from edge.config.device import DeviceConfig
from edge.config.dispatch import DispatchConfig
from edge.config.mqtt import MqttConfig
from edge.config.recognition import (
    AlignConfig,
    DetectorConfig,
    EmbedderConfig,
    QualityConfig,
    RuntimeConfig,
)
from edge.config.run import RunConfig
from edge.config.sync import SyncConfig
from edge.config.tracker import TrackerConfig
from edge.config.watchlist import WatchlistConfig
from edge.errors import ConfigError
from edge.models import EMBEDDING_MODEL, shipped_precisions
from edge.system.inputs import load_yaml, read_bounded

STATE_DIR_ENV = "EDGE_STATE_DIR"
DEFAULT_STATE_DIR: Path = Path("/var/lib/edge")
OUTBOX_FILE = "outbox.db"
AUDIT_FILE = "audit.jsonl"
DISPATCH_DB_FILE = "dispatch.db"
DISPATCH_AUDIT_FILE = "dispatch-audit.jsonl"
RUN_METRICS_FILE = "run-metrics.json"
TRUST_DIR = "trusted"
# A full config with every setting and its comment (`edge config defaults`) is about 20 KiB;
# 1 MiB is far beyond any real one and small enough to read on the smallest device.
MAX_CONFIG_BYTES = 1 << 20


@dataclass(frozen=True)
class StatePaths:
    """Where this device keeps its state: one answer for every command and service."""

    root: Path
    outbox: Path
    audit: Path
    watchlist: Path  # the installed list (edge.watchlist.install)
    sync: Path  # transfers in progress (edge.fleet.sync)
    dispatch_db: str  # dispatch's database URL (edge dispatch)
    dispatch_audit: Path  # dispatch's audit log of operator actions
    run_metrics: Path  # edge run's current numbers, for edge sync's local API
    trust: Path  # trusted hub keys, <key id>.pem (edge keys trust; edge.watchlist.keys)


def resolve_state_dir(configured: Path, override: Path | None = None) -> Path:
    """The state directory: an explicit override (``--state-dir``), else ``$EDGE_STATE_DIR``,
    else the config value."""
    if override is not None:
        return override
    from_env = os.environ.get(STATE_DIR_ENV)
    if from_env:
        return Path(from_env)
    return configured


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
    alerts: AlertsConfig = AlertsConfig()
    watchlist: WatchlistConfig = WatchlistConfig()
    capture: CaptureConfig = CaptureConfig()
    tracker: TrackerConfig = TrackerConfig()
    run: RunConfig = RunConfig()
    sync: SyncConfig = SyncConfig()
    api: ApiConfig = ApiConfig()
    dispatch: DispatchConfig = DispatchConfig()

    @model_validator(mode="after")
    def _models_ship(self) -> Config:
        """Every model the settings name exists for the backend at the precision asked."""
        backend = self.runtime.backend
        for field, stem, precision in self.model_variants():
            shipped = shipped_precisions(stem, backend)
            if precision not in shipped:
                raise ValueError(
                    f"{field} {precision!r} does not exist for runtime.backend {backend!r} "
                    f"({stem} ships in {', '.join(shipped)})"
                )
        return self

    def model_variants(self) -> list[tuple[str, str, str]]:
        """(setting, model, precision) of every model these settings may load."""
        detectors = {"full_range", self.detector.model, self.detector.crop_model}
        return [
            *(
                ("detector.precision", f"blazeface_{name}", self.detector.precision)
                for name in sorted(detectors)
            ),
            ("embedder.precision", EMBEDDING_MODEL, self.embedder.precision),
        ]

    def paths(self, state_dir: Path | None = None) -> StatePaths:
        """The state paths, with ``state_dir`` (``--state-dir``) overriding the configured one."""
        root = resolve_state_dir(self.state_dir, state_dir)
        return StatePaths(
            root=root,
            outbox=self.outbox.path or root / OUTBOX_FILE,
            audit=self.audit.path or root / AUDIT_FILE,
            watchlist=root / self.watchlist.subdir,
            sync=root / self.sync.subdir,
            dispatch_db=self.dispatch.db or f"sqlite:///{root / DISPATCH_DB_FILE}",
            dispatch_audit=self.dispatch.audit_path or root / DISPATCH_AUDIT_FILE,
            run_metrics=root / RUN_METRICS_FILE,
            trust=root / TRUST_DIR,
        )


def _key(part: object) -> str:
    """One step of an error's location; an unknown key that is not a plain name is quoted, so
    that a message stays one line whatever the file holds."""
    text = str(part)
    return text if re.fullmatch(r"[A-Za-z0-9_-]+", text) else repr(text)


def _one_line(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        message = " ".join(str(err["msg"]).removeprefix("Value error, ").split())
        where = ".".join(_key(p) for p in err["loc"])
        # A cross-section check names its own settings.
        parts.append(f"{where}: {message}" if where else message)
    return "; ".join(parts)


def config_from_dict(data: dict[str, Any], source: Path | None = None) -> Config:
    """Validate a config mapping; ``source`` names the file it came from in the error."""
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        where = f" {source}" if source is not None else ""
        raise ConfigError(f"invalid config{where}: {_one_line(exc)}") from exc


def load_config(path: Path | None) -> Config:
    """Read a YAML config file; ``None`` gives the defaults."""
    if path is None:
        return Config()
    raw = read_bounded(path, MAX_CONFIG_BYTES, "config", ConfigError)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"config {path} is not UTF-8 text (byte {exc.start}: {exc.reason})"
        ) from exc
    try:
        data = load_yaml(text)
    except ValueError as exc:
        raise ConfigError(f"config {path} is not valid YAML: {exc}".splitlines()[0]) from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"config {path}: the top level must be a mapping")
    return config_from_dict(data, path)
