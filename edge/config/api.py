"""Config section ``api``: the device's local HTTP API (health, status, metrics, watchlist).

The bearer token is never in the file: it is the systemd credential ``api_token`` or the
environment variable ``EDGE_API_TOKEN`` (:func:`edge.config.secrets.read_secret`).
"""

from __future__ import annotations

from pydantic import Field

from edge.config.base import Section


class ApiConfig(Section):
    enabled: bool = Field(
        True, description="Serve the local API from `edge sync` (the device's management process)."
    )
    host: str = Field(
        "127.0.0.1",
        min_length=1,
        description="Address to bind. The default answers only on this machine; bind another "
        "address only behind a firewall (every endpoint but /health needs the token anyway).",
    )
    port: int = Field(8787, ge=1, le=65535, description="TCP port of the local API.")
    open_health: bool = Field(
        True,
        description="Answer /health without the token, for liveness probes and load balancers. "
        "/status, /metrics and /watchlist always need it.",
    )
