"""Config section ``capture``: the video source ``edge run`` watches and how it is read.

See docs/run.md for how the settings interact and what the defaults were measured on.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from edge.config.base import Section


class CaptureConfig(Section):
    source: str | None = Field(
        None,
        description="What to watch when `edge run` gets no --source: a video file, a folder of "
        "still images, a camera index ('0'), a V4L2 device ('/dev/video0'), or an "
        "rtsp://, rtsps://, rtmp://, http:// or https:// stream. Credentials in a URL are never "
        "logged. Unset: `edge run` without --source runs the bundled demo.",
    )
    max_fps: float = Field(
        0.0,
        ge=0.0,
        le=240.0,
        description="Frame-rate cap: at most this many frames per second (on the source's own "
        "clock) go to inference; the others are skipped at the source and counted. 0: no cap.",
    )
    file_pacing: Literal["asap", "realtime"] = Field(
        "asap",
        description="Video files and folders: 'asap' reads them as fast as inference takes "
        "frames and processes every frame (the reader waits, nothing is dropped); 'realtime' "
        "plays them at their own frame rate like a camera, so frames are dropped when inference "
        "falls behind. Cameras and streams are always real time.",
    )
    queue_frames: int = Field(
        2,
        ge=1,
        le=64,
        description="Frames held between capture and inference. From a live source, a full "
        "queue drops its oldest frame (counted as dropped): capture never waits for inference, "
        "so what is processed is always recent.",
    )
    open_timeout_s: float = Field(
        10.0,
        gt=0.0,
        le=300.0,
        description="Give up one attempt to open a stream after this long without an answer "
        "(logged as 'no answer from HOST:PORT within N s').",
    )
    read_timeout_s: float = Field(
        10.0,
        gt=0.0,
        le=300.0,
        description="A stream that delivers no frame for this long has stalled: it is reported "
        "('stalled: no frame for N s') within about a second of this, closed and reconnected.",
    )
    reconnect_min_s: float = Field(
        0.5,
        gt=0.0,
        le=300.0,
        description="First delay before reopening a lost camera or stream; doubles after each "
        "failed attempt up to reconnect_max_s. While a stream's host refuses or does not answer "
        "connections (or its stream stalled), it is also how often a TCP connect checks whether "
        "it is back, so that it is reopened within about this long of being reachable again.",
    )
    reconnect_max_s: float = Field(
        30.0, gt=0.0, le=3600.0, description="Longest delay between reconnect attempts."
    )
    max_reconnects: int | None = Field(
        None,
        ge=0,
        description="Give up (the run ends, exit status 1) after this many reconnect attempts in "
        "a row without a frame, whatever the cause. 0: never give up, not even on a stream "
        "whose server answers 'not found' or 'unauthorized'. Unset: reconnect for ever to a "
        "source that was lost or cannot be reached yet (e.g. an unplugged camera), but stop at "
        "once (exit status 2) when the first open of a stream is answered 'not found' (404) "
        "or 'unauthorized' (401, 403): the URL's path or credentials are wrong.",
    )
    rtsp_transport: Literal["tcp", "udp"] = Field(
        "tcp",
        description="RTSP transport. 'tcp' survives lossy links without smeared frames; 'udp' "
        "has less latency on a clean LAN.",
    )

    @model_validator(mode="after")
    def _delays_ordered(self) -> CaptureConfig:
        if self.reconnect_max_s < self.reconnect_min_s:
            raise ValueError("reconnect_max_s must be >= reconnect_min_s")
        return self
