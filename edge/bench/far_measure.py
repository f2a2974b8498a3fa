"""What ``edge bench far`` measures: each frame through the production pipeline, what became of
each pasted face, the same people at full size, and the figures per face width."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge.bench import scenes
from edge.bench.far_people import Probe
from edge.bench.groundtruth import Photos
from edge.pipeline.analyzer import FaceAnalyzer
from edge.pipeline.pick import nearest_to_centre
from edge.pipeline.quality import assess
from edge.types import AlignedFace, Box
from edge.watchlist.matcher import Watchlist


@dataclass
class FaceRecord:
    width: int
    mated: bool
    detected: bool = False
    passed: bool = False  # through the quality gate (and the size limit, if configured)
    eye_px: float | None = None
    rank1: bool = False  # the top candidate is the right person (gated faces: False)
    above: bool = False  # ... and at or above the threshold
    alarm: bool = False  # the top candidate reaches the threshold (any person)
    rank1_ungated: bool = False


@dataclass
class FrameRecord:
    width: int
    ms: float
    detect_ms: float
    false: int
    duplicates: int
    ignored: int
    unplaced: int
    at_limit: bool  # the detector returned detector.max_faces faces: some may be cut off


@dataclass
class Records:
    faces: list[FaceRecord] = field(default_factory=list)
    frames: list[FrameRecord] = field(default_factory=list)


def _passes(face: AlignedFace, floor: float, min_eye_px: float) -> tuple[bool, float]:
    """Through the quality gate (which refuses any face under the eye-distance limit)?"""
    quality = assess(face, min_eye_px).score
    return quality >= floor, quality


def _search(watchlist: Watchlist, vector: Any, name: str) -> tuple[bool, bool, bool]:
    """(top is the right person, ... at or above the threshold, top reaches the threshold)."""
    ident = watchlist.identify(vector)
    if not ident.candidates:
        return False, False, False
    top = ident.candidates[0]
    alarm = top.score >= ident.threshold
    return top.label == name, top.label == name and alarm, alarm


def measure_scene(
    analyzer: FaceAnalyzer,
    scene: scenes.Scene,
    probes: Sequence[Probe],
    watchlist: Watchlist,
    width: int,
    records: Records,
) -> tuple[scenes.Scoring, list[Box]]:
    """Run one frame through the pipeline, time it and record what happened to each face."""
    config = analyzer.config
    floor = config.quality.min_quality
    min_eye = config.quality.min_eye_px
    t0 = time.perf_counter()
    detections = analyzer.detect(scene.image)
    t1 = time.perf_counter()
    boxes = [d.box for d in detections]
    scoring = scenes.score(scene, boxes)
    placed = sorted(scoring.hits)
    t2 = time.perf_counter()
    aligned = analyzer.align(scene.image, [detections[scoring.hits[k]] for k in placed])
    gate = [_passes(face, floor, min_eye) for face in aligned]
    vectors = analyzer.embed([face for face, (ok, _) in zip(aligned, gate, strict=True) if ok])
    t3 = time.perf_counter()
    gated = [face for face, (ok, _) in zip(aligned, gate, strict=True) if not ok]
    extra = analyzer.embed(gated) if gated else vectors[:0]  # untimed: the diagnostic only
    passed_vectors, gated_vectors = iter(vectors), iter(extra)
    by_index = dict(zip(placed, zip(aligned, gate, strict=True), strict=True))
    for k, face in enumerate(scene.faces):
        probe = probes[face.tag]
        rec = FaceRecord(width, probe.mated)
        if k in by_index:
            face_aligned, (ok, _quality) = by_index[k]
            rec.detected, rec.passed = True, ok
            rec.eye_px = face_aligned.eye_distance_px
            vector = next(passed_vectors) if ok else next(gated_vectors)
            rank1, above, alarm = _search(watchlist, vector, face.name)
            rec.rank1_ungated = rank1
            if ok:
                rec.rank1, rec.above, rec.alarm = rank1, above, alarm
        records.faces.append(rec)
    ms = (t1 - t0 + t3 - t2) * 1000
    records.frames.append(
        FrameRecord(
            width,
            ms,
            (t1 - t0) * 1000,
            len(scoring.false),
            len(scoring.duplicates),
            len(scoring.ignored),
            len(scene.unplaced),
            len(detections) >= config.detector.max_faces,
        )
    )
    return scoring, boxes


def full_size(
    analyzer: FaceAnalyzer, photos: Photos, probes: Sequence[Probe], watchlist: Watchlist
) -> dict[str, Any]:
    """The same people at full size (the photo itself, as in ``edge bench identify``): the
    ceiling the embedder and the threshold leave for any face width."""
    seen: dict[Path, Probe] = {p.face.path: p for p in probes}
    mated = nonmated = rank1 = above = alarms = 0
    for path, probe in seen.items():
        image = photos.image(path)
        faces = analyzer.analyze(image)
        face = nearest_to_centre(faces, image) if faces else None
        result = (False, False, False)
        if face is not None and face.embedding is not None:
            result = _search(watchlist, face.embedding, probe.face.name)
        if probe.mated:
            mated += 1
            rank1 += result[0]
            above += result[1]
        else:
            nonmated += 1
            alarms += result[2]
    return {
        "mated": mated,
        "nonmated": nonmated,
        "identify": rank1 / mated if mated else None,
        "identify_above_threshold": above / mated if mated else None,
        "false_match_rate": alarms / nonmated if nonmated else None,
    }


def _share(values: Iterable[bool]) -> float | None:
    flags = list(values)
    return round(sum(flags) / len(flags), 4) if flags else None


def summarise(records: Records, widths: Sequence[int]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for width in widths:
        faces = [f for f in records.faces if f.width == width]
        frames = [f for f in records.frames if f.width == width]
        mated = [f for f in faces if f.mated]
        nonmated = [f for f in faces if not f.mated]
        timed = [f.ms for f in frames]
        eyes = [f.eye_px for f in faces if f.eye_px is not None]
        n = max(1, len(frames))
        out[str(width)] = {
            "detect": _share(f.detected for f in faces),
            "false_per_frame": round(sum(f.false for f in frames) / n, 4),
            "identify": _share(f.rank1 for f in mated),
            "ms_per_frame": round(float(np.median(timed)), 1) if timed else None,
            "identify_above_threshold": _share(f.above for f in mated),
            "false_match_rate": _share(f.alarm for f in nonmated),
            "wrong_match_rate": _share(f.alarm and not f.rank1 for f in mated),
            "duplicates_per_frame": round(sum(f.duplicates for f in frames) / n, 4),
            "passed_gate": _share(f.passed for f in faces),
            "identify_ungated": _share(f.rank1_ungated for f in mated),
            "ms_per_frame_p90": round(float(np.percentile(timed, 90)), 1) if timed else None,
            "detect_ms": round(float(np.median([f.detect_ms for f in frames])), 1)
            if frames
            else None,
            "eye_px_median": round(float(np.median(eyes)), 1) if eyes else None,
            "frames": len(frames),
            "faces": len(faces),
            "mated": len(mated),
            "nonmated": len(nonmated),
            "unplaced": sum(f.unplaced for f in frames),
            "real_faces_ignored_per_frame": round(sum(f.ignored for f in frames) / n, 4),
            "frames_at_face_limit": sum(f.at_limit for f in frames),
        }
    return out
