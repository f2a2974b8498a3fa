"""Config sections for ``edge run``: ``capture`` (the video source), ``tracker`` (tracks, best
shots and the match decision) and ``run`` (the runtime around them).

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


class TrackerConfig(Section):
    iou_threshold: float = Field(
        0.3,
        gt=0.0,
        lt=1.0,
        description="A face continues a track when its box overlaps the track's predicted box "
        "by at least this intersection-over-union.",
    )
    lost_ttl_s: float = Field(
        1.0,
        gt=0.0,
        le=60.0,
        description="A track not seen for this long has ended. Its shots and embeddings are "
        "forgotten then (they are only ever held in memory).",
    )
    scene_cut: float = Field(
        20.0,
        ge=0.0,
        le=255.0,
        description="A frame whose 32x18 grey thumbnail differs from the previous frame's by "
        "more than this mean absolute difference (0-255) is a cut to another scene: every track "
        "ends there, so none carries a face's identity over to someone else. Measured on the "
        "demo clip: cuts 26-30, camera and subject motion at most 13. 0 turns it off.",
    )
    max_shots: int = Field(
        5, ge=1, le=50, description="Best-quality shots (embeddings) a track keeps."
    )
    assess_every: int = Field(
        5,
        ge=1,
        le=300,
        description="A track's face is aligned, quality-scored and (above the quality floor) "
        "embedded at most once every this many frames it is seen in, unless it looks clearly "
        "better than before (assess_margin). Detection runs on every frame; this is what keeps "
        "the CPU cost per frame low.",
    )
    assess_margin: float = Field(
        0.15,
        ge=0.0,
        le=1.0,
        description="Assess a face out of turn when a cheap quality estimate (from the "
        "detector's keypoints) beats the track's best estimate so far by this much. 0 turns the "
        "cheap estimate off.",
    )
    max_assess_per_frame: int = Field(
        4,
        ge=1,
        le=64,
        description="At most this many faces are aligned and embedded per frame, new tracks "
        "first; the rest wait for a later frame. Bounds the cost of a crowded frame.",
    )
    split_below: float = Field(
        0.1,
        ge=-1.0,
        le=1.0,
        description="A new embedding whose cosine to its track's mean embedding is below this "
        "is another person (boxes swapped or a cut): the track ends and a new one starts.",
    )
    reid_above: float = Field(
        0.5,
        ge=-1.0,
        le=1.0,
        description="A new track whose first embedding has at least this cosine to a track "
        "lost less than lost_ttl_s ago continues that track (same id, its shots kept).",
    )
    decision: Literal["votes", "best"] = Field(
        "votes",
        description="When a track counts as a match. 'votes': min_votes of its shots (each "
        "above the quality floor) name the same entry at or above the list's threshold, and "
        "they are at least min_vote_share of its shots. 'best': the best-quality shot of each "
        "window_s (or of the whole track, if shorter) decides alone.",
    )
    min_votes: int = Field(
        2,
        ge=1,
        le=50,
        description="'votes': shots that must match the same entry. 1 alerts on a single frame; "
        "2 or more keeps one blurry frame from naming anybody. Still images (a folder source) "
        "always use 1: each photo is a separate sighting.",
    )
    min_vote_share: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description="'votes': the matching shots must be at least this share of the track's "
        "embedded shots.",
    )
    window_s: float = Field(
        1.0, gt=0.0, le=600.0, description="'best': length of a decision window, in seconds."
    )
    cooldown_s: float = Field(
        120.0,
        ge=0.0,
        description="At most one alert per watchlist entry in this many seconds (source clock), "
        "whichever track it comes from.",
    )


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
