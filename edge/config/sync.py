"""Config section ``sync``: which watchlists a device follows over MQTT, and how it fetches them.

The hub side (``edge hub publish``) reads
``chunk_bytes`` from here too. Topics and the protocol are in docs/fleet.md.
"""

from __future__ import annotations

import re

from pydantic import Field, field_validator, model_validator

from edge.config.base import TOPIC_ID_PATTERN, Section


class SyncConfig(Section):
    lists: list[str] = Field(
        default_factory=list,
        description="Watchlist ids this device follows, most preferred first. The device holds "
        "one list at a time: the first of these that the hub announces (it moves to a more "
        "preferred one when that appears, and never to a less preferred one while it holds a "
        "list named here). Empty: `edge sync` has nothing to do.",
    )
    window: int = Field(
        8,
        ge=1,
        le=256,
        description="Chunks requested (subscribed to) at once. Bounds the memory and the burst a "
        "transfer costs; a larger window is faster over links with a long round trip.",
    )
    chunk_timeout_s: float = Field(
        30.0,
        gt=0.0,
        le=3600.0,
        description="A requested chunk that has not arrived after this long is requested again "
        "(e.g. a clustered broker that has not replicated it to this node yet).",
    )
    chunk_retries: int = Field(
        3,
        ge=1,
        le=100,
        description="A chunk that is missing or fails its sha256 this many times in a row fails "
        "the transfer; the previous list stays active and the transfer is tried again after "
        "retry_s (chunks already verified are kept).",
    )
    retry_s: float = Field(
        300.0,
        gt=0.0,
        le=86_400.0,
        description="Wait this long before trying a failed transfer again. A refused bundle "
        "(bad signature, wrong model, ...) is not tried again until the hub announces another.",
    )
    max_bundle_bytes: int = Field(
        512 * 1024 * 1024,
        ge=1024,
        description="Announcements of larger transfers are refused before any chunk is fetched "
        "(the device needs about twice this on disk while it installs).",
    )
    chunk_bytes: int = Field(
        64 * 1024,
        ge=1024,
        le=16 * 1024 * 1024,
        description="Hub side: chunk size for `edge hub publish`. 64 KiB stays below every "
        "common broker's message limit (EMQX 1 MiB, AWS IoT 128 KiB) with room to spare.",
    )
    subdir: str = Field(
        "sync",
        pattern=r"^[A-Za-z0-9._-]+$",
        description="Folder under the state directory for transfers in progress (kept across "
        "restarts so an interrupted transfer resumes).",
    )

    @field_validator("lists")
    @classmethod
    def _list_ids(cls, value: list[str]) -> list[str]:
        for list_id in value:
            if not re.fullmatch(TOPIC_ID_PATTERN, list_id):
                raise ValueError(
                    f"list id {list_id!r}: 1-64 letters, digits, '.', '_' or '-' (one topic level)"
                )
        if len(set(value)) != len(value):
            raise ValueError("a list id is named twice")
        return value

    @model_validator(mode="after")
    def _window_fits(self) -> SyncConfig:
        if self.chunk_bytes * self.window > 256 * 1024 * 1024:
            raise ValueError("window * chunk_bytes must stay below 256 MiB")
        return self
