"""Config sections for the device identity, MQTT link, outbox, audit log and alert contents.

They are fields of the root :class:`edge.config.Config` (``device``, ``mqtt``, ``outbox``,
``audit``, ``alerts``). Secrets are not here: the MQTT password comes from
:func:`edge.config.read_secret` (systemd credential ``mqtt_password`` or ``EDGE_MQTT_PASSWORD``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from edge.config_section import Section

# Device ids become one MQTT topic level, so they must not hold '/', '+', '#' or spaces.
DEVICE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
STATE_DIR_ENV = "EDGE_STATE_DIR"
DEFAULT_STATE_DIR: Path = Path("/var/lib/edge")


class LocationConfig(Section):
    name: str | None = Field(
        None, max_length=200, description="Free-text place name, e.g. 'North gate, camera 2'."
    )
    lat: float | None = Field(None, ge=-90.0, le=90.0, description="Latitude, WGS 84 degrees.")
    lon: float | None = Field(None, ge=-180.0, le=180.0, description="Longitude, WGS 84 degrees.")

    @model_validator(mode="after")
    def _lat_lon_together(self) -> LocationConfig:
        if (self.lat is None) != (self.lon is None):
            raise ValueError("lat and lon must be given together")
        if self.name is None and self.lat is None:
            raise ValueError("give a name, or lat and lon, or both")
        return self


class DeviceConfig(Section):
    id: str = Field(
        "edge-0",
        pattern=DEVICE_ID_PATTERN,
        description="Device id: one MQTT topic level (letters, digits, '.', '_', '-'; at most 64) "
        "and the 'device_id' of every alert. Must be unique per broker.",
    )
    location: LocationConfig | None = Field(
        None, description="Fixed location copied into every alert; omit for a moving device."
    )


class TlsConfig(Section):
    ca_file: Path = Field(
        description="PEM file of the CA(s) that signed the broker's certificate. Required: edge "
        "never connects over TLS without verifying the broker."
    )
    cert_file: Path | None = Field(
        None, description="PEM client certificate, for brokers that require mutual TLS."
    )
    key_file: Path | None = Field(
        None, description="PEM private key of cert_file (unencrypted; protect it by file mode)."
    )
    verify_hostname: bool = Field(
        True,
        description="Check that the broker certificate names mqtt.host. Turn off only for a "
        "broker reached by an address its certificate does not list.",
    )

    @model_validator(mode="after")
    def _key_with_cert(self) -> TlsConfig:
        if self.key_file is not None and self.cert_file is None:
            raise ValueError("key_file needs cert_file")
        return self


class MqttConfig(Section):
    host: str = Field("localhost", min_length=1, description="Broker host name or address.")
    port: int | None = Field(
        None, ge=1, le=65535, description="Broker port; default 1883, or 8883 with tls."
    )
    protocol: Literal["3.1.1", "5"] = Field(
        "5",
        description="MQTT version. '5' is preferred: the broker's PUBACK then says whether it "
        "accepted each alert (e.g. not authorised), which 3.1.1 cannot.",
    )
    keepalive_s: int = Field(
        30, ge=5, le=3600, description="Keepalive; a dead link is noticed within ~1.5x this."
    )
    client_id: str | None = Field(
        None,
        min_length=1,
        max_length=128,
        description="MQTT client id; default 'edge-<device id>'. Must be stable for the "
        "broker to keep the session (queued review decisions) across reconnects.",
    )
    topic_prefix: str = Field(
        "edge/v1",
        min_length=1,
        description="Topics are '<topic_prefix>/<device id>/{alert,status,heartbeat,review}'.",
    )
    username: str | None = Field(
        None,
        description="Broker user name. The password is never in this file: it is read from the "
        "systemd credential 'mqtt_password' or the environment variable EDGE_MQTT_PASSWORD.",
    )
    tls: TlsConfig | None = Field(None, description="Connect over TLS; omit for plain TCP.")
    persistent_session: bool = Field(
        True,
        description="Ask the broker to keep this device's session (clean_session=false, or a "
        "session expiry in MQTT 5), so review decisions sent while it was offline arrive later.",
    )
    session_expiry_s: int = Field(
        7 * 24 * 3600,
        ge=0,
        description="MQTT 5 only: how long the broker keeps the session after a disconnect.",
    )
    reconnect_min_s: float = Field(
        1.0, gt=0.0, le=300.0, description="First reconnect delay; doubles up to the maximum."
    )
    reconnect_max_s: float = Field(
        60.0, gt=0.0, le=3600.0, description="Longest delay between reconnect attempts."
    )
    connect_timeout_s: float = Field(
        10.0, gt=0.0, le=300.0, description="Give up one connection attempt after this long."
    )
    max_inflight: int = Field(
        64,
        ge=1,
        le=65535,
        description="Alerts published and not yet acknowledged at once (lowered to the broker's "
        "'receive maximum' in MQTT 5).",
    )
    heartbeat_s: float = Field(
        30.0, gt=0.0, description="Interval of the heartbeat message (uptime, fps, queues)."
    )

    @model_validator(mode="after")
    def _delays_ordered(self) -> MqttConfig:
        if self.reconnect_max_s < self.reconnect_min_s:
            raise ValueError("reconnect_max_s must be >= reconnect_min_s")
        return self

    @property
    def effective_port(self) -> int:
        if self.port is not None:
            return self.port
        return 8883 if self.tls is not None else 1883


class OutboxConfig(Section):
    path: Path | None = Field(
        None, description="SQLite file of unacknowledged alerts; default <state_dir>/outbox.db."
    )
    max_alerts: int = Field(
        100_000, ge=1, description="At most this many unacknowledged alerts are kept."
    )
    max_bytes: int = Field(
        256 * 1024 * 1024,
        ge=64 * 1024,
        description="At most this many payload bytes are kept (crops make alerts large).",
    )
    when_full: Literal["drop_oldest", "reject_new"] = Field(
        "drop_oldest",
        description="When a bound is reached: 'drop_oldest' evicts the oldest alerts to make "
        "room, 'reject_new' refuses the new one (enqueue raises). Either way the alert is "
        "written to the audit log, never dropped silently.",
    )
    memory_fallback: int = Field(
        1000,
        ge=0,
        description="If the outbox cannot be written (disk full), keep up to this many alerts in "
        "memory, still send them, and store them once there is room. 0 makes enqueue fail.",
    )


class AuditConfig(Section):
    path: Path | None = Field(
        None, description="Hash-chained JSON-lines audit log; default <state_dir>/audit.jsonl."
    )
    fsync: bool = Field(
        True, description="fsync after every append, so an acknowledged record survives a crash."
    )


class AlertContentConfig(Section):
    include_crop: bool = Field(
        True, description="Attach the probe face as a JPEG crop (base64) to each alert."
    )
    crop_max_bytes: int = Field(
        32 * 1024,
        ge=1024,
        le=192 * 1024,
        description="Crops larger than this (JPEG bytes) are left out of the alert, which is "
        "still sent.",
    )


def resolve_state_dir(configured: Path, override: Path | None = None) -> Path:
    """The state directory: an explicit override (``--state-dir``), else ``$EDGE_STATE_DIR``,
    else the config value."""
    if override is not None:
        return override
    from_env = os.environ.get(STATE_DIR_ENV)
    if from_env:
        return Path(from_env)
    return configured
