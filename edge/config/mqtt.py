"""Config section ``mqtt``: the broker link shared by alerts, sync and the tools.

The password is never here: it comes from :func:`edge.config.secrets.read_secret` (systemd
credential ``mqtt_password`` or ``EDGE_MQTT_PASSWORD``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from edge.config.base import Section


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


# Plenty for any naming scheme; MQTT itself allows 65,535 bytes for a whole topic.
MAX_PREFIX_CHARS = 256


def topic_prefix_problem(prefix: str) -> str | None:
    """Why ``prefix`` cannot start a topic that edge publishes to, or None if it can.

    Publishing to a topic with '+' or '#' (wildcards), an empty level or a NUL is refused by
    the broker (or by paho) at every attempt, so it is refused here, when the config loads."""
    levels = prefix.removesuffix("/").split("/")  # one trailing '/' is dropped when joining
    if any(ch in prefix for ch in "+#"):
        return "must not hold the MQTT wildcards '+' or '#'"
    if any(ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F for ch in prefix):
        return "must not hold NUL or another control character"
    if "" in levels:
        return "must not have an empty level ('//', or a leading '/')"
    if prefix.startswith("$"):
        return "must not start with '$' (topics like $SYS belong to the broker)"
    return None


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
        max_length=MAX_PREFIX_CHARS,
        description="Topics are '<topic_prefix>/<device id>/{alert,status,heartbeat,review}'. "
        "One or more levels separated by '/': no MQTT wildcard ('+', '#'), no empty level, no "
        "control character, and not starting with '$' (reserved for the broker).",
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

    @field_validator("topic_prefix")
    @classmethod
    def _topic_prefix(cls, value: str) -> str:
        problem = topic_prefix_problem(value)
        if problem is not None:
            raise ValueError(f"topic prefix {value!r} {problem}")
        return value

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
