"""Config section ``tracker``: tracks, best shots and the match decision.

See docs/run.md for how the settings interact and what the defaults were measured on.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from edge.config.base import Section


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
