"""Config section ``run``: the runtime around capture and tracking during ``edge run``.

See docs/run.md for how the settings interact and what the defaults were measured on.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from edge.config.base import Section


class RunConfig(Section):
    inference_threads: int | None = Field(
        None,
        ge=1,
        le=64,
        description="Threads per model session during `edge run`, overriding runtime.threads "
        "(capture and alerting run beside inference). Unset: runtime.threads.",
    )
    alert_crop_px: int = Field(
        160,
        ge=32,
        le=640,
        description="The matched face is attached to its alert as a JPEG at most this many "
        "pixels on its longer side (see alerts.include_crop).",
    )
    status_log_s: float = Field(
        60.0,
        ge=0.0,
        description="When stderr is not a terminal, log the status line (fps, faces, tracks, "
        "drops, alerts) this often. 0: never. On a terminal it is redrawn every second.",
    )
    annotate_unmatched: Literal["pixelate", "show"] = Field(
        "pixelate",
        description="In an --annotate review video, faces of tracks that matched nothing are "
        "pixelated ('pixelate'), or left visible ('show').",
    )
