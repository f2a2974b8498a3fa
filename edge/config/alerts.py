"""Config sections ``outbox``, ``audit`` and ``alerts``: where alerts wait, the audit log, what
an alert carries, and when it counts as delivered."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from edge.config.base import Section


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


class AlertsConfig(Section):
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
    include_context: bool = Field(
        True,
        description="Attach a context frame to each alert: the scene of the matched shot as a "
        "JPEG at most context_width px wide, the matched face's box beside it (not drawn in), "
        "and every other face pixelated on the device before the JPEG is made (docs/alerts.md). "
        "It costs a scan of the whole frame for each matched shot that may become an alert "
        "(measured on a 2-core x86: 50-110 ms at 640x360, 125-220 ms at 1920x1080). false: no "
        "context frame is made or sent.",
    )
    context_width: int = Field(
        640,
        ge=160,
        le=640,
        description="The context frame is scaled down to at most this many pixels wide (never "
        "up); the schema allows at most 640.",
    )
    context_background: Literal["blurred", "sharp"] = Field(
        "blurred",
        description="'blurred': everything in the context frame outside the matched person (their "
        "face box grown to head and shoulders) is blurred as well, so that a face no detector "
        "pass could find (a profile, a turned or half-hidden head) is never sent sharp; the "
        "layout of the scene stays readable. 'sharp': the scene is sent as seen and only the "
        "faces found are pixelated.",
    )
    context_max_bytes: int = Field(
        128 * 1024,
        ge=16 * 1024,
        le=384 * 1024,
        description="Context frames larger than this (JPEG bytes) are left out of the alert, "
        "which is still sent. 640x360 scenes measured 15-20 KiB.",
    )
    require_dispatch_ack: bool = Field(
        True,
        description="Keep each alert in the outbox until dispatch (`edge dispatch serve`) says it "
        "stored it (its ack on '<prefix>/<device>/ack'); the broker's PUBACK only marks it sent, "
        "and an alert without a dispatch ack is sent again (same alert_id). false: the PUBACK "
        "removes it, for plain MQTT consumers (Home Assistant, Node-RED) that send no ack; an "
        "alert is then guaranteed only as far as the broker (docs/alerts.md).",
    )
    dispatch_ack_timeout_s: float = Field(
        30.0,
        gt=0.0,
        le=86400.0,
        description="An alert sent without a dispatch ack (or that the broker had no subscriber "
        "for: MQTT 5 'no matching subscribers') is sent again after this long. The wait doubles "
        "with every further attempt of the same alert, up to dispatch_ack_max_interval_s.",
    )
    dispatch_ack_max_interval_s: float = Field(
        600.0,
        gt=0.0,
        le=86400.0,
        description="Longest wait between two sends of one unacknowledged alert: bounds the "
        "resend traffic while dispatch is down (the outbox bounds still apply).",
    )

    @model_validator(mode="after")
    def _intervals_ordered(self) -> AlertsConfig:
        if self.dispatch_ack_max_interval_s < self.dispatch_ack_timeout_s:
            raise ValueError("dispatch_ack_max_interval_s must be >= dispatch_ack_timeout_s")
        return self
