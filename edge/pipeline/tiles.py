"""Where to look for faces in a large frame: tile levels, the tiles, crops, the video schedule.

BlazeFace sees its input at 192x192 (full range). Letterboxed whole, a 1920x1080 frame shrinks
tenfold, and the model needs a face about 20 input pixels wide to find it reliably (69 % of
faces at 16 px, 92 % at 20, 98 % at 24: docs/recognition.md), so the whole-frame pass finds
faces from about 200 px. The frame is therefore also cut into overlapping square tiles at one
or more *levels* (one tile size, so one scale), each letterboxed to the model on its own
(:mod:`edge.pipeline.multiscale` runs them and merges the results).

A level's tiles overlap by at least the widest face that level must find whole; wider faces
belong to the next coarser level or to the whole-frame pass. So every face in a level's range
lies whole inside at least one of its tiles.

Video cannot afford every tile every frame: :class:`TileScheduler` hands out a few tiles per
frame in a fixed rotating cycle (every tile is scanned at least once per cycle), and
:func:`crop_regions` adds, every frame, a crop around each tracked face too small for the
whole-frame pass, so a small face is followed in every frame once found.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from edge.config.recognition import DetectorConfig
from edge.errors import ConfigError
from edge.types import Box

RegionKind = Literal["frame", "tile", "crop"]
CROP_LEVEL = -2  # Region.level of a crop around a tracked face (-1: the whole frame)

# Input face width (px) that full range finds about 90 % / 60 % of the time (measured on LFW
# faces pasted into real backgrounds; docs/recognition.md, "model scale").
RELIABLE_INPUT_FACE_PX = 22.0
SOME_INPUT_FACE_PX = 16.0
FULL_RANGE_INPUT = 192
CROP_FACE_SHARE = 0.2  # a crop's side is the face width / this (a 26 px face in 128 input px)
CROP_MIN_PX = 128  # ... and never smaller than the short-range input (no upscaling)


@dataclass(frozen=True)
class Region:
    """A rectangle of the frame that is letterboxed to the detector's input on its own."""

    x: int
    y: int
    w: int
    h: int
    kind: RegionKind = "tile"
    level: int = -1  # index into TilePlan.levels; -1: the whole frame; CROP_LEVEL: a crop

    @property
    def x2(self) -> int:
        return self.x + self.w

    @property
    def y2(self) -> int:
        return self.y + self.h

    @property
    def rect(self) -> tuple[int, int, int, int]:
        return self.x, self.y, self.w, self.h

    def contains(self, box: Box, margin: float = 0.0) -> bool:
        """The box lies inside, at least ``margin`` px from every edge."""
        return (
            box[0] >= self.x + margin
            and box[1] >= self.y + margin
            and box[2] <= self.x2 - margin
            and box[3] <= self.y2 - margin
        )

    def touches_inner_edge(self, box: Box, frame_w: int, frame_h: int, margin: float) -> bool:
        """The box reaches within ``margin`` of an edge of this region that is not an edge of
        the frame (so the face may be cut there)."""
        return (
            (self.x > 0 and box[0] < self.x + margin)
            or (self.y > 0 and box[1] < self.y + margin)
            or (self.x2 < frame_w and box[2] > self.x2 - margin)
            or (self.y2 < frame_h and box[3] > self.y2 - margin)
        )


@dataclass(frozen=True)
class TileLevel:
    """One tile size, so one scale: ``tile_px`` frame pixels per side."""

    tile_px: int
    overlap_px: int  # the widest face this level must find whole


@dataclass(frozen=True)
class TilePlan:
    """What a frame of one size is scanned with, besides the whole-frame pass."""

    levels: tuple[TileLevel, ...]  # coarse to fine; empty: the whole frame only
    crops_below_px: float  # video: tracked faces narrower than this get a crop every frame

    def grid(self, frame_w: int, frame_h: int) -> list[Region]:
        """Every tile of every level, coarse level first."""
        return [
            tile
            for index, level in enumerate(self.levels)
            for tile in tile_grid(frame_w, frame_h, level.tile_px, level.overlap_px, index)
        ]

    def describe(self) -> str:
        if not self.levels:
            return "whole frame only"
        return "whole frame + " + " + ".join(
            f"{level.tile_px}/{level.overlap_px}" for level in self.levels
        )


NO_TILES = TilePlan((), 0.0)


def _starts(length: int, tile: int, overlap: int) -> list[int]:
    if length <= tile:
        return [0]
    count = math.ceil((length - overlap) / (tile - overlap))
    return [round(i * (length - tile) / (count - 1)) for i in range(count)]


def tile_grid(
    frame_w: int, frame_h: int, tile_px: int, overlap_px: int, level: int = 0
) -> list[Region]:
    """Square ``tile_px`` tiles covering the frame, overlapping by at least ``overlap_px``
    (spread evenly, so the real overlap is usually larger); row-major order."""
    tw, th = min(tile_px, frame_w), min(tile_px, frame_h)
    return [
        Region(x, y, tw, th, "tile", level)
        for y in _starts(frame_h, tile_px, overlap_px)
        for x in _starts(frame_w, tile_px, overlap_px)
    ]


def whole_frame_face_px(frame_w: int, frame_h: int) -> float:
    """The face width (frame px) from which the whole-frame pass finds faces reliably."""
    return RELIABLE_INPUT_FACE_PX * max(frame_w, frame_h) / FULL_RANGE_INPUT


def derived_levels(frame_w: int, frame_h: int, smallest_face_px: float) -> tuple[TileLevel, ...]:
    """Levels for a frame size, so that faces of ``smallest_face_px`` are found about 60 % of
    the time and wider ones reliably.

    The finest level puts the smallest face at 16 input px (scale ``16 / smallest``, never
    above 1: no upscaling); coarser levels halve the scale while it stays above 1.25 times the
    whole-frame pass's. A level's overlap is 1.1 times the smallest face the next coarser pass
    finds reliably (22 input px), rounded up to 16 px. 1920x1080: 768/256 and 384/112.
    """
    whole = FULL_RANGE_INPUT / max(frame_w, frame_h)
    finest = min(1.0, SOME_INPUT_FACE_PX / smallest_face_px)
    if finest <= 1.25 * whole:
        return ()
    scales = [finest]
    while scales[-1] / 2 > 1.25 * whole:
        scales.append(scales[-1] / 2)
    scales.reverse()  # coarse to fine
    levels = []
    for i, scale in enumerate(scales):
        coarser_face = (
            whole_frame_face_px(frame_w, frame_h)
            if i == 0
            else RELIABLE_INPUT_FACE_PX / scales[i - 1]
        )
        tile = round(FULL_RANGE_INPUT / scale)
        overlap = min(math.ceil(1.1 * coarser_face / 16) * 16, tile // 2)
        levels.append(TileLevel(tile, overlap))
    return tuple(levels)


def plan_tiles(config: DetectorConfig, frame_w: int, frame_h: int, *, video: bool) -> TilePlan:
    """The plan for frames of this size under ``config`` (see ``detector.tiling``).

    A configured level with tiles larger than the frame is a :class:`ConfigError` for video
    (the setting cannot work for this camera); for a still it is skipped."""
    if config.tiling == "off" or (
        config.tiling == "auto" and max(frame_w, frame_h) <= config.tiling_above_px
    ):
        return NO_TILES
    if config.tiles is None:
        levels = derived_levels(frame_w, frame_h, config.smallest_face_px)
    else:
        levels = ()
        for n, level in enumerate(config.tiles):
            if level.size > max(frame_w, frame_h):
                if video:
                    raise ConfigError(
                        f"detector.tiles[{n}].size {level.size} is larger than the "
                        f"{frame_w}x{frame_h} frames of this source: use smaller tiles, or "
                        "leave detector.tiles unset to derive them from the frame size"
                    )
                continue
            levels += (TileLevel(level.size, level.overlap),)
    if not levels:
        return NO_TILES
    return TilePlan(levels, whole_frame_face_px(frame_w, frame_h))


def centred_region(
    box: Box, side: int, frame_w: int, frame_h: int, kind: RegionKind, level: int
) -> Region:
    """A ``side`` square centred on the box, shifted (not shrunk) to stay inside the frame."""
    w, h = min(side, frame_w), min(side, frame_h)
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    x = round(min(max(cx - w / 2, 0), frame_w - w))
    y = round(min(max(cy - h / 2, 0), frame_h - h))
    return Region(x, y, w, h, kind, level)


def crop_regions(
    tracked: Iterable[tuple[Box, float]],
    plan: TilePlan,
    max_crops: int,
    frame_w: int,
    frame_h: int,
    scheduled: Sequence[Region] = (),
) -> list[Region]:
    """Video: crops centred on tracked faces too small for the whole-frame pass.

    ``tracked`` holds (predicted box, seconds since last detected) per track; the stalest go
    first, at most ``max_crops``. A face that one of this frame's ``scheduled`` tiles holds whole
    needs no crop, and neither does one well inside a crop already made for a face of about its
    size."""
    if plan.crops_below_px <= 0 or max_crops <= 0:
        return []
    small = sorted(
        ((box, stale) for box, stale in tracked if 0 < box[2] - box[0] < plan.crops_below_px),
        key=lambda item: -item[1],
    )
    crops: list[tuple[Region, float]] = []
    for box, _ in small:
        if len(crops) == max_crops:
            break
        width = box[2] - box[0]
        if any(tile.contains(box, 0.1 * width) for tile in scheduled):
            continue
        if any(
            crop.contains(box, 0.25 * crop.w) and max(width, w) / min(width, w) < 1.5
            for crop, w in crops
        ):
            continue
        side = max(CROP_MIN_PX, round(width / CROP_FACE_SHARE))
        crops.append((centred_region(box, side, frame_w, frame_h, "crop", CROP_LEVEL), width))
    return [crop for crop, _ in crops]


class TileScheduler:
    """Video: which tiles to scan in each frame.

    A fixed cycle over the tiles of every level, each level's tiles in an order that spreads
    consecutive picks over the frame; ``per_frame`` tiles are taken from the cycle each frame,
    so every tile is scanned at least every :meth:`period` frames."""

    def __init__(self, tiles: Sequence[Region], per_frame: int) -> None:
        by_level: dict[int, list[Region]] = {}
        for tile in tiles:
            by_level.setdefault(tile.level, []).append(tile)
        self.cycle = [
            group[i] for _, group in sorted(by_level.items()) for i in _spread_order(len(group))
        ]
        self.per_frame = max(1, min(per_frame, len(self.cycle))) if self.cycle else 0
        self._next = 0

    def period(self) -> int:
        """Frames for one pass over every tile."""
        return math.ceil(len(self.cycle) / self.per_frame) if self.cycle else 0

    def next(self) -> list[Region]:
        picked = []
        for _ in range(self.per_frame):
            picked.append(self.cycle[self._next])
            self._next = (self._next + 1) % len(self.cycle)
        return picked


def _spread_order(n: int) -> list[int]:
    """A permutation of range(n) stepping by k, k coprime with n and near n / 2."""
    if n <= 2:
        return list(range(n))
    step = next(k for k in range(max(2, n // 2), 0, -1) if math.gcd(k, n) == 1)
    return [(i * step) % n for i in range(n)]
