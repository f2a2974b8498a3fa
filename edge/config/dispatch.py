"""Config section ``dispatch``: the dispatch centre's service (``edge dispatch serve``).

Secrets are never here: a PostgreSQL password comes from the credential ``dispatch_db_password``
(or ``EDGE_DISPATCH_DB_PASSWORD``) via :func:`edge.config.secrets.read_secret`. Sessions are
random tokens kept (hashed) in the database, so there is no session secret to configure.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from edge.config.base import TOPIC_ID_PATTERN, Section

DB_PASSWORD_SECRET = "dispatch_db_password"


def check_db_url(url: str) -> str:
    """A ``sqlite:///PATH`` or ``postgresql://USER@HOST[:PORT]/DB`` URL without a password."""
    parts = urlsplit(url)
    scheme = parts.scheme.split("+")[0]
    if scheme not in ("sqlite", "postgresql"):
        raise ValueError(f"database URL {url!r}: use sqlite:///PATH or postgresql://USER@HOST/DB")
    if parts.password:
        raise ValueError(
            "the database URL must not hold a password: give it as the credential "
            f"'{DB_PASSWORD_SECRET}' (or $EDGE_{DB_PASSWORD_SECRET.upper()})"
        )
    return url


class DispatchTlsConfig(Section):
    cert_file: Path = Field(description="PEM certificate (chain) the console serves over HTTPS.")
    key_file: Path = Field(description="Its PEM private key (protect it by file mode).")


class DispatchConfig(Section):
    db: str | None = Field(
        None,
        description="Database URL: 'sqlite:///PATH' (one process; the default is "
        "<state_dir>/dispatch.db) or 'postgresql://USER@HOST[:PORT]/DB' (several `serve` "
        "processes share it and split the alerts between them). Never with a password: that is "
        "the credential 'dispatch_db_password'.",
    )
    host: str = Field(
        "127.0.0.1",
        min_length=1,
        description="Address the web console and API listen on (--listen HOST:PORT). Bind a "
        "LAN address only with tls set or behind a TLS proxy.",
    )
    port: int = Field(8080, ge=1, le=65535, description="Port of the web console and API.")
    tls: DispatchTlsConfig | None = Field(
        None, description="Serve HTTPS (session cookies are then marked Secure)."
    )
    client_id: str | None = Field(
        None,
        min_length=1,
        max_length=128,
        description="MQTT client id of this serve process; default 'edge-dispatch-<host "
        "name>-<port>', stable across restarts (the broker keeps its session and queues alerts "
        "for it) and distinct for every process on one machine.",
    )
    share_group: str = Field(
        "edge-dispatch",
        pattern=TOPIC_ID_PATTERN,
        description="MQTT 5 shared-subscription group of the alert topics: every alert goes to "
        "one process of the group.",
    )
    shared_subscription: Literal["auto", "on", "off"] = Field(
        "auto",
        description="Subscribe to alerts as '$share/<share_group>/...' ('auto': with PostgreSQL, "
        "where several processes share the database; 'off' with SQLite, where one process "
        "serves). Needs MQTT 5 and a broker that supports shared subscriptions.",
    )
    batch_max: int = Field(
        500,
        ge=1,
        le=1000,
        description="At most this many received alerts are committed (and acknowledged) together.",
    )
    batch_wait_ms: float = Field(
        20.0,
        ge=0.0,
        le=1000.0,
        description="How long a received alert may wait for others to share its commit.",
    )
    online_within_s: float = Field(
        95.0,
        gt=0.0,
        description="A device counts as online while its status is 'online' and its last "
        "heartbeat is at most this old (three heartbeats of 30 s, plus a little).",
    )
    page_size: int = Field(50, ge=1, le=500, description="Alerts per page of the console's list.")
    recent_hits: int = Field(
        10, ge=0, le=100, description="Other recent hits of the same entry shown on an alert page."
    )
    session_ttl_s: float = Field(
        12 * 3600.0, gt=0.0, description="A console login lasts this long (then log in again)."
    )
    login_max_failures: int = Field(
        5,
        ge=1,
        description="Failed logins for one user name, or from one address, within "
        "login_window_s before further attempts are refused (HTTP 429) until the window passes.",
    )
    login_window_s: float = Field(300.0, gt=0.0, description="The login rate limit's window.")
    audit_path: Path | None = Field(
        None,
        description="Hash-chained audit log of every operator action; default "
        "<state_dir>/dispatch-audit.jsonl (one per machine when processes share PostgreSQL).",
    )
    thumbnail_px: int = Field(
        240,
        ge=32,
        le=1024,
        description="`import-list`: reference photos are kept as JPEG thumbnails at most this many "
        "pixels on their longer side, and so are the enrolled faces cropped from them.",
    )
    late_after_s: float = Field(
        60.0,
        gt=0.0,
        description="The console marks an alert late when it arrived at least this long after "
        "its frame was captured (held in the device's outbox while offline, or a clock is off).",
    )

    @field_validator("db")
    @classmethod
    def _db_url(cls, value: str | None) -> str | None:
        return None if value is None else check_db_url(value)

    @model_validator(mode="after")
    def _no_share_with_sqlite(self) -> DispatchConfig:
        if self.shared_subscription == "on" and (self.db or "sqlite").startswith("sqlite"):
            raise ValueError(
                "shared_subscription 'on' needs PostgreSQL: with SQLite one process serves"
            )
        return self
