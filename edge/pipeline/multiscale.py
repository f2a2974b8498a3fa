"""Multi-scale detection: the whole frame, tiles and crops, merged by one weighted NMS.

Every candidate above its threshold, from the whole-frame pass, from each tile and from each
crop around a tracked face (:mod:`edge.pipeline.tiles` says which), is mapped to frame pixels
and merged by ONE weighted NMS, so a face seen by several regions becomes one detection.

Seams: a candidate touching an inner edge of its tile may be a cut face. It is dropped if it
is wider than the level's overlap (a coarser pass has it whole) or if another region scanned
in this frame holds it whole; otherwise (in video, the neighbouring tile is not in this frame's
share of the cycle) a re-check tile centred on it is scanned at once, so a truncated box never
reaches the tracker.

Verification: a face found only by tiles or crops must reach ``detector.verify_presence`` on
the face mesh's presence output; it removes about three in four of the tiles' false detections.
Faces the whole-frame pass found are trusted as before, and so are faces on a tracked box
(verified when first found).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from edge.config.recognition import DetectorConfig
from edge.pipeline.detect import BlazeFace, Candidates, FaceDetector, merge
from edge.pipeline.tiles import (
    Region,
    TilePlan,
    TileScheduler,
    centred_region,
    crop_regions,
    plan_tiles,
)
from edge.types import Box, Detection, Image, iou

# (frame, detections) -> the face-mesh presence probability of each.
Verifier = Callable[[Image, list[Detection]], list[float]]
EDGE_MARGIN = 0.02  # of a region's side: a box this close to an inner edge may be cut
TRUST_IOU = 0.3  # a detection overlapping a tracked box this much needs no verification


@dataclass
class ScanStats:
    """What one scan did, and how long each pass took (ms)."""

    tiles: int = 0
    crops: int = 0
    rechecks: int = 0
    dropped_at_seams: int = 0
    rejected: int = 0  # failed the face-mesh check
    ms: dict[str, float] = field(default_factory=dict)  # 'frame', 'tiles', 'crops', 'verify'


class MultiScaleDetector:
    """The whole frame, then tiles and crops, one weighted NMS, then verification."""

    def __init__(
        self,
        frame: FaceDetector,
        tiles: BlazeFace,
        crops: BlazeFace,
        config: DetectorConfig,
        verifier: Verifier | None = None,
    ) -> None:
        self.frame = frame
        self.tiles = tiles
        self.crops = crops
        self.config = config
        self.verifier = verifier
        self.last = ScanStats()
        self._plans: dict[tuple[int, int], TilePlan] = {}

    def plan(self, frame_w: int, frame_h: int) -> TilePlan:
        """The still-image plan for this frame size (cached)."""
        key = (frame_w, frame_h)
        if key not in self._plans:
            self._plans[key] = plan_tiles(self.config, frame_w, frame_h, video=False)
        return self._plans[key]

    def detect(
        self,
        image: Image,
        plan: TilePlan | None = None,
        tiles: Sequence[Region] | None = None,
        crops: Sequence[Region] = (),
        trusted: Sequence[Box] = (),
    ) -> list[Detection]:
        """Faces in the frame, best first. ``plan`` defaults to the still-image plan for this
        frame size; ``tiles`` None scans every tile of it (a still)."""
        height, width = image.shape[:2]
        plan = plan if plan is not None else self.plan(width, height)
        stats = ScanStats()
        started = time.perf_counter()
        parts = [self.frame.candidates(image)]
        after_frame = time.perf_counter()
        stats.ms["frame"] = (after_frame - started) * 1000
        scan = list(plan.grid(width, height) if tiles is None else tiles) + list(crops)
        stats.tiles = sum(region.kind == "tile" for region in scan)
        stats.crops = len(scan) - stats.tiles
        if scan:
            parts += self._scan_regions(image, plan, scan, stats)
        merged = merge(Candidates.concat(parts), width, height, self.config)
        detections = merged.detections
        if scan and self.verifier is not None and detections:
            before_verify = time.perf_counter()
            detections = self._verify(image, detections, merged.frame_scores, trusted, stats)
            stats.ms["verify"] = (time.perf_counter() - before_verify) * 1000
        self.last = stats
        return detections

    def _scan_regions(
        self, image: Image, plan: TilePlan, scan: Sequence[Region], stats: ScanStats
    ) -> list[Candidates]:
        height, width = image.shape[:2]
        parts: list[Candidates] = []
        cut: list[tuple[Box, int]] = []
        for region in scan:
            started = time.perf_counter()
            found = self._run(image, region)
            kept, cut_here = self._seam_filter(found, region, plan, scan, (width, height), stats)
            parts.append(kept)
            cut += [(box, region.level) for box in cut_here]
            _add_ms(stats, f"{region.kind}s", started)
        for box, level in cut:
            started = time.perf_counter()
            side = plan.levels[level].tile_px
            region = centred_region(box, side, width, height, "tile", level)
            stats.rechecks += 1
            found = self._run(image, region)
            kept, _ = self._seam_filter(found, region, plan, [], (width, height), stats)
            parts.append(kept)
            _add_ms(stats, "tiles", started)
        return parts

    def _run(self, image: Image, region: Region) -> Candidates:
        model = self.tiles if region.kind == "tile" else self.crops
        return model.candidates(image, self.config.tile_threshold, region.rect)

    def _seam_filter(
        self,
        found: Candidates,
        region: Region,
        plan: TilePlan,
        scan: Sequence[Region],
        frame_size: tuple[int, int],
        stats: ScanStats,
    ) -> tuple[Candidates, list[Box]]:
        """Drop candidates cut by an inner edge of ``region``; returns the kept ones and the
        cut faces in the level's range that no other scanned region holds whole (to re-check,
        one box per face)."""
        if not len(found):
            return found, []
        frame_w, frame_h = frame_size
        margin = EDGE_MARGIN * max(region.w, region.h)
        # A crop around a tracked face re-checks nothing: a face its edge cuts is a tile's.
        largest = plan.levels[region.level].overlap_px if region.kind == "tile" else -1.0
        keep = np.ones(len(found), dtype=bool)
        recheck: list[Box] = []
        for i, raw in enumerate(found.boxes):
            box: Box = (float(raw[0]), float(raw[1]), float(raw[2]), float(raw[3]))
            if not region.touches_inner_edge(box, frame_w, frame_h, margin):
                continue
            keep[i] = False
            if box[2] - box[0] > largest:
                continue  # beyond this level's range: a coarser pass has it whole
            if not any(o is not region and o.contains(box, margin / 2) for o in scan):
                recheck.append(box)
        stats.dropped_at_seams += int((~keep).sum())
        return found.select(keep), _one_per_face(recheck)

    def _verify(
        self,
        image: Image,
        detections: list[Detection],
        frame_scores: list[float],
        trusted: Sequence[Box],
        stats: ScanStats,
    ) -> list[Detection]:
        assert self.verifier is not None
        check = [
            i
            for i, (d, frame_score) in enumerate(zip(detections, frame_scores, strict=True))
            if frame_score < self.config.score_threshold
            and not any(iou(d.box, box) > TRUST_IOU for box in trusted)
        ]
        if not check:
            return detections
        presence = self.verifier(image, [detections[i] for i in check])
        rejected = {
            i for i, p in zip(check, presence, strict=True) if p < self.config.verify_presence
        }
        stats.rejected = len(rejected)
        return [d for i, d in enumerate(detections) if i not in rejected]


class VideoScanner:
    """The per-frame scan for video at one frame size: the whole frame, this frame's share of
    the tile cycle, and crops around tracked faces too small for the whole-frame pass."""

    def __init__(
        self, detector: MultiScaleDetector, plan: TilePlan, frame_w: int, frame_h: int
    ) -> None:
        self.detector = detector
        self.plan = plan
        self.scheduler = TileScheduler(
            self.plan.grid(frame_w, frame_h), detector.config.tiles_per_frame
        )
        self.frame_w, self.frame_h = frame_w, frame_h

    def detect(self, image: Image, tracked: Iterable[tuple[Box, float]] = ()) -> list[Detection]:
        """``tracked``: (predicted box, seconds since last detected) of each live track."""
        tracked = list(tracked)
        tiles = self.scheduler.next() if self.scheduler.cycle else []
        crops = crop_regions(
            tracked,
            self.plan,
            self.detector.config.max_crops,
            self.frame_w,
            self.frame_h,
            tiles,
        )
        return self.detector.detect(
            image, self.plan, tiles, crops, trusted=[box for box, _ in tracked]
        )


def _add_ms(stats: ScanStats, name: str, started: float) -> None:
    stats.ms[name] = stats.ms.get(name, 0.0) + (time.perf_counter() - started) * 1000


def _one_per_face(boxes: list[Box]) -> list[Box]:
    """One box per cut face (several anchors of one face fire)."""
    out: list[Box] = []
    for box in sorted(boxes, key=lambda b: -(b[2] - b[0])):
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        if not any(o[0] <= cx <= o[2] and o[1] <= cy <= o[3] for o in out):
            out.append(box)
    return out
