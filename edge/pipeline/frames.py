"""The per-frame recognition loop for video: detect every frame, embed only what is worth it.

Detection runs on every frame and feeds the tracker. The expensive stages (mesh alignment and
quality, then the embedding for faces above the quality floor) run for a track only when it is
new, when a cheap quality estimate says its face got clearly better than before, or every
``tracker.assess_every`` frames; at most ``tracker.max_assess_per_frame`` faces per frame. Each
embedding is searched in the watchlist on its own and becomes a shot of its track; the decision
stage (:mod:`edge.pipeline.decide`) turns enough evidence into a :class:`~edge.pipeline.decide.Hit`.

Only shots that matched an entry get a JPEG crop, and those that may become an alert a context
frame too (:mod:`edge.pipeline.context`: the scene, every other face blurred), only in memory;
everything else about a face is dropped with its track.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import cv2
import numpy as np

from edge.config import Config
from edge.pipeline.align import KeypointAligner
from edge.pipeline.analyzer import FaceAnalyzer
from edge.pipeline.context import ContextMaker
from edge.pipeline.decide import Decider, Gallery, Hit
from edge.pipeline.handoff import Frame
from edge.pipeline.metrics import StageSet
from edge.pipeline.multiscale import ScanStats, VideoScanner
from edge.pipeline.quality import assess
from edge.pipeline.track import Shot, Track, Tracker
from edge.types import Box, ContextFrame, Detection, FloatArray, Image

log = logging.getLogger(__name__)

CROP_MARGIN = 0.25  # the alert crop extends the face box by this share of its size on each side
CROP_JPEG_QUALITY = 85
THUMB_SIZE = (32, 18)  # scene-cut detection compares frames at this size


@dataclass(frozen=True)
class FaceView:
    """What an annotated frame shows of one face."""

    box: Box
    track_id: int
    label: str | None  # the entry its track matched, if any


@dataclass
class ScanCounters:
    """What the tiled scans of a run did, in all."""

    tiles: int = 0
    crops: int = 0
    rechecks: int = 0
    dropped_at_seams: int = 0
    rejected_by_mesh: int = 0

    def add(self, stats: ScanStats) -> None:
        self.tiles += stats.tiles
        self.crops += stats.crops
        self.rechecks += stats.rechecks
        self.dropped_at_seams += stats.dropped_at_seams
        self.rejected_by_mesh += stats.rejected


@dataclass
class FrameResult:
    frame: Frame
    faces: list[FaceView] = field(default_factory=list)
    hits: list[Hit] = field(default_factory=list)


def face_crop_jpeg(image: Image, box: Box, max_px: int) -> bytes | None:
    """The face with a margin, at most ``max_px`` on its longer side, as JPEG bytes."""
    height, width = image.shape[:2]
    x1, y1, x2, y2 = box
    mx, my = (x2 - x1) * CROP_MARGIN, (y2 - y1) * CROP_MARGIN
    left, top = max(0, int(x1 - mx)), max(0, int(y1 - my))
    right, bottom = min(width, int(x2 + mx + 1)), min(height, int(y2 + my + 1))
    if right - left < 2 or bottom - top < 2:
        return None
    crop = image[top:bottom, left:right]
    scale = max_px / max(crop.shape[:2])
    if scale < 1:
        size = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
        crop = np.asarray(cv2.resize(crop, size, interpolation=cv2.INTER_AREA), dtype=np.uint8)
    ok, data = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, CROP_JPEG_QUALITY])
    return data.tobytes() if ok else None


class FrameProcessor:
    """Detect, track, assess, embed, search and decide, one frame at a time (one thread)."""

    # 'detect' is the whole detection; the detect_* stages are its passes on a tiled frame.
    STAGES = (
        "detect",
        "detect_frame",
        "detect_tiles",
        "detect_crops",
        "detect_verify",
        "track",
        "align",
        "embed",
        "match",
        "context",
    )

    def __init__(
        self,
        analyzer: FaceAnalyzer,
        watchlist: Gallery,
        config: Config,
        *,
        stages: StageSet | None = None,
        still_images: bool = False,
    ) -> None:
        self.analyzer = analyzer
        self.watchlist = watchlist  # may be replaced between frames (a new list installed)
        self.config = config
        self.tracker = Tracker(config.tracker)
        # Each still is a separate sighting: one good shot is all there will ever be.
        self.decider = Decider(config.tracker, min_votes=1 if still_images else None)
        self.stages = stages or StageSet(*self.STAGES)
        self.floor = config.quality.min_quality
        self.min_eye_px = config.quality.min_eye_px
        self._cheap = KeypointAligner()
        content = config.alerts
        self._contexts = (
            ContextMaker(analyzer, content.context_width, content.context_background)
            if content.include_context
            else None
        )
        self._detections: list[Detection] = []  # the current frame's, for its context frames
        self._context_ms = 0.0  # spent on context frames in the current frame's matching
        self.frames = 0
        self.faces = 0  # detections over all frames
        self.assessed = 0  # faces aligned and quality-scored
        self.embedded = 0  # faces embedded and searched
        self.last_faces = 0
        self.scene_cuts = 0
        self.scan = ScanCounters()
        self.still_images = still_images
        self._thumb: FloatArray | None = None
        self._scanner: VideoScanner | None = None
        self._scanner_size: tuple[int, int] | None = None

    def prepare(self, frame_w: int, frame_h: int) -> None:
        """Set up the scan for frames of this size (a configured tile that cannot fit them is
        a ConfigError here, before any frame)."""
        if not self.still_images and (frame_w, frame_h) != self._scanner_size:
            self._scanner = self.analyzer.video_scanner(frame_w, frame_h)
            self._scanner_size = (frame_w, frame_h)

    @property
    def tiling(self) -> str:
        """What the scan of the current frame size does, for logs and metrics."""
        return self._scanner.plan.describe() if self._scanner is not None else "whole frame only"

    def _detect(self, frame: Frame) -> list[Detection]:
        if self.still_images:
            return self.analyzer.detect(frame.image)  # every tile: one shot per still
        height, width = frame.image.shape[:2]
        self.prepare(width, height)
        if self._scanner is None:
            return self.analyzer.detect(frame.image)
        tracked = [
            (track.predict(frame.t), frame.t - track.last_t)
            for track in self.tracker.tracks.values()
        ]
        detections = self._scanner.detect(frame.image, tracked)
        stats = self._scanner.detector.last
        for name, ms in stats.ms.items():
            self.stages[f"detect_{name}"].add(ms)
        self.scan.add(stats)
        return detections

    def _scene_cut(self, frame: Frame) -> bool:
        grey = cv2.cvtColor(frame.image, cv2.COLOR_BGR2GRAY)
        thumb = cv2.resize(grey, THUMB_SIZE, interpolation=cv2.INTER_AREA).astype(np.float32)
        previous, self._thumb = self._thumb, thumb
        limit = self.config.tracker.scene_cut
        if previous is None or not limit or not self.tracker.tracks:
            return False
        if float(np.abs(thumb - previous).mean()) <= limit:
            return False
        self.scene_cuts += 1
        log.debug("frame %d: scene cut, %d tracks end", frame.index, len(self.tracker.tracks))
        return True

    def _cheap_quality(self, image: Image, detection: Detection) -> float:
        try:
            return assess(self._cheap.align(image, [detection])[0], self.min_eye_px).score
        except ValueError:  # degenerate keypoints
            return 0.0

    def _schedule(
        self, image: Image, pairs: list[tuple[Track, Detection]]
    ) -> list[tuple[Track, Detection, float]]:
        """The faces to assess in this frame, most urgent first."""
        cfg = self.config.tracker
        ranked: list[tuple[tuple[int, float], Track, Detection, float]] = []
        for track, detection in pairs:
            proxy = self._cheap_quality(image, detection) if cfg.assess_margin > 0 else 0.0
            if not track.assessed:
                key = (0, -proxy)
            elif cfg.assess_margin > 0 and proxy > track.best_proxy + cfg.assess_margin:
                key = (1, track.best_proxy - proxy)
            elif track.since_assess + 1 >= cfg.assess_every:
                key = (2, -float(track.since_assess))
            else:
                track.since_assess += 1
                continue
            ranked.append((key, track, detection, proxy))
        ranked.sort(key=lambda r: r[0])
        chosen = ranked[: cfg.max_assess_per_frame]
        for _, track, _, _ in ranked[cfg.max_assess_per_frame :]:
            track.since_assess += 1
        return [(track, detection, proxy) for _, track, detection, proxy in chosen]

    def process(self, frame: Frame) -> FrameResult:
        result = FrameResult(frame)
        started = time.perf_counter()
        # Tracks gone for longer than lost_ttl_s end before this frame is associated, and all of
        # them at a cut to another scene.
        ended = self.tracker.end_all() if self._scene_cut(frame) else self.tracker.expire(frame.t)
        for track in ended:
            result.hits += self.decider.finish(track)
        t_cut = time.perf_counter()
        detections = self._detect(frame)
        self._detections = detections
        t_detect = time.perf_counter()
        pairs = self.tracker.update(detections, frame.t, frame.index)
        due = self._schedule(frame.image, pairs)
        self.stages["detect"].add((t_detect - t_cut) * 1000)
        self.stages["track"].add((time.perf_counter() - t_detect + t_cut - started) * 1000)
        self.frames += 1
        self.faces += len(detections)
        self.last_faces = len(detections)
        if due:
            result.hits += self._assess(frame, due)
        for track in self.tracker.tracks.values():
            result.hits += self.decider.tick(track, frame.t)
        for track, detection in pairs:
            # A track replaced in attach() (split or continued) shows under its new identity.
            shown = self._current(track, detection)
            result.faces.append(FaceView(detection.box, shown.id, shown.label))
        return result

    def _assess(self, frame: Frame, due: list[tuple[Track, Detection, float]]) -> list[Hit]:
        """Align and quality-score the due faces; embed, search and decide those that pass."""
        started = time.perf_counter()
        aligned = self.analyzer.align(frame.image, [d for _, d, _ in due])
        qualities = [assess(face, self.min_eye_px).score for face in aligned]
        t_align = time.perf_counter()
        self.stages["align"].add((t_align - started) * 1000)
        self.assessed += len(due)
        passing = []
        for (track, detection, proxy), face, quality in zip(due, aligned, qualities, strict=True):
            track.assessed, track.since_assess = True, 0
            track.best_proxy = max(track.best_proxy, proxy)
            if quality >= self.floor:
                passing.append((track, detection, face, quality))
        if not passing:
            return []
        vectors = self.analyzer.embed([face for _, _, face, _ in passing])
        t_embed = time.perf_counter()
        self.stages["embed"].add((t_embed - t_align) * 1000)
        self.embedded += len(passing)
        hits: list[Hit] = []
        self._context_ms = 0.0
        for (track, detection, _, quality), vector in zip(passing, vectors, strict=True):
            hits += self._take_shot(frame, track, detection, quality, vector)
        # Context frames are their own stage.
        self.stages["match"].add((time.perf_counter() - t_embed) * 1000 - self._context_ms)
        return hits

    def _take_shot(
        self, frame: Frame, track: Track, detection: Detection, quality: float, vector: FloatArray
    ) -> list[Hit]:
        identification = self.watchlist.identify(vector, now=frame.wall)
        match = identification.match
        best = identification.candidates[0] if identification.candidates else None
        crop = None
        if match is not None:
            crop = face_crop_jpeg(frame.image, detection.box, self.config.run.alert_crop_px)
        shot = Shot(
            frame_index=frame.index,
            t=frame.t,
            wall=frame.wall,
            box=detection.box,
            quality=quality,
            embedding=vector,
            threshold=identification.threshold,
            match=match,
            best=best,
            crop_jpeg=crop,
        )
        owner, ended = self.tracker.attach(track, shot)
        if self._contexts is not None and self.decider.wants_context(owner, shot):
            shot.context = self._context(frame, detection, (track, owner))
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "frame %d: track %d%s, quality %.2f, best entry %s",
                frame.index,
                owner.id,
                "" if owner is track else f" (was {track.id})",
                quality,
                "none" if best is None else f"{best.label} {best.score:.3f}",
            )
        hits = self.decider.finish(ended) if ended is not None else []
        return hits + self.decider.observe(owner, shot)

    def _context(
        self, frame: Frame, detection: Detection, its_tracks: tuple[Track, ...]
    ) -> ContextFrame | None:
        """The context frame for ``detection``: the frame's other detections and every other
        track's box (last seen and predicted) are blurred, besides what the maker's scan finds."""
        assert self._contexts is not None
        started = time.perf_counter()
        others = [d.box for d in self._detections if d is not detection]
        for track in self.tracker.tracks.values():
            if all(track is not own for own in its_tracks):
                others += [track.box, track.predict(frame.t)]
        context = self._contexts.make(frame.image, detection.box, others)
        ms = (time.perf_counter() - started) * 1000
        self.stages["context"].add(ms)
        self._context_ms += ms
        return context

    def _current(self, track: Track, detection: Detection) -> Track:
        if track.id in self.tracker.tracks:
            return track
        for other in self.tracker.tracks.values():
            if other.box == detection.box:
                return other
        return track

    def finish(self) -> list[Hit]:
        """The source has ended: every track ends (and is forgotten)."""
        hits: list[Hit] = []
        for track in self.tracker.end_all():
            hits += self.decider.finish(track)
        return hits

    @property
    def active_tracks(self) -> int:
        return len(self.tracker.tracks)
