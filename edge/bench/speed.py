"""Per-stage latency and end-to-end frame rate: 640x480 frames with one and three faces, and
1920x1080 frames with small faces, as a still (the whole frame and every tile) and as video
(the whole frame, this frame's share of the tiles, crops around the tracked faces).

Frames are composed from the shipped sample photos (and, at 1080p, a frame of the demo clip
scaled up as the scene), so the benchmark runs on a fresh machine. Each configuration is warmed
up, then timed over repeated frames; medians and p90s are reported.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from edge.config import Config, config_from_dict
from edge.demo import DEMO_CLIP
from edge.errors import BackendError
from edge.models import EMBEDDING_MODEL, RUNTIME_SUFFIX, shipped_precisions
from edge.pipeline.analyzer import FaceAnalyzer
from edge.pipeline.images import decode_image, read_image
from edge.pipeline.quality import assess
from edge.samples import OTHER_PERSON, SAME_PERSON
from edge.types import Image

FRAME_W, FRAME_H = 640, 480
HD_W, HD_H = 1920, 1080
HD_FACE_PX = (48, 64, 96)  # face widths in the 1080p frame: each below the whole-frame pass's
STAGES = ("decode", "detect", "align", "embed")


def sample_frame(faces: int) -> Image:
    """A 640x480 frame with ``faces`` sample photos (faces about 60 px wide) on a grey scene."""
    frame = np.full((FRAME_H, FRAME_W, 3), 96, dtype=np.uint8)
    photos = [read_image(p) for p in (*SAME_PERSON, OTHER_PERSON)]
    for i in range(faces):
        tile = cv2.resize(photos[i % len(photos)], (150, 150), interpolation=cv2.INTER_AREA)
        x, y = 40 + i * 200, 150 + (i % 2) * 60
        frame[y : y + 150, x : x + 150] = tile
    return frame


def hd_frame() -> Image:
    """A 1920x1080 scene (the demo clip scaled up) with sample photos whose faces are 48, 64
    and 96 px wide: too small for the whole-frame pass, found by the tiles."""
    cap = cv2.VideoCapture(str(DEMO_CLIP))
    cap.set(cv2.CAP_PROP_POS_FRAMES, 30)
    ok, scene = cap.read()
    cap.release()
    frame = np.full((HD_H, HD_W, 3), 96, dtype=np.uint8)
    if ok:
        frame = np.asarray(cv2.resize(scene, (HD_W, HD_H), interpolation=cv2.INTER_LINEAR))
    photos = [read_image(p) for p in (*SAME_PERSON, OTHER_PERSON)]
    for i, face_px in enumerate(HD_FACE_PX):
        side = round(250 * face_px / 111)  # LFW photos: the face is about 111 of 250 px
        tile = cv2.resize(photos[i], (side, side), interpolation=cv2.INTER_AREA)
        x, y = 300 + i * 500, 200 + i * 150
        frame[y : y + side, x : x + side] = tile
    return frame


@dataclass
class Timings:
    per_stage: dict[str, list[float]]
    total: list[float]


def time_frames(
    analyzer: FaceAnalyzer, jpeg: bytes, repeats: int, warmup: int, *, video: bool = False
) -> Timings:
    """``video``: detect as ``edge run`` does frame after frame (a rotating share of the tiles,
    crops around the faces found in the previous frame); else as for a still."""
    per_stage: dict[str, list[float]] = {stage: [] for stage in STAGES}
    total = []
    tracked: list[tuple[tuple[float, float, float, float], float]] = []
    for i in range(warmup + repeats):
        t0 = time.perf_counter()
        frame = decode_image(jpeg)
        t1 = time.perf_counter()
        scanner = analyzer.video_scanner(frame.shape[1], frame.shape[0]) if video else None
        if scanner is not None:
            detections = scanner.detect(frame, tracked)
            tracked = [(d.box, 0.0) for d in detections]
        else:
            detections = analyzer.detect(frame)
        t2 = time.perf_counter()
        aligned = analyzer.align(frame, detections)
        floor = analyzer.config.quality.min_quality
        min_eye_px = analyzer.config.quality.min_eye_px
        passing = [face for face in aligned if assess(face, min_eye_px).score >= floor]
        t3 = time.perf_counter()
        analyzer.embed(passing)
        t4 = time.perf_counter()
        if i >= warmup:
            for stage, (start, end) in zip(
                STAGES, [(t0, t1), (t1, t2), (t2, t3), (t3, t4)], strict=True
            ):
                per_stage[stage].append((end - start) * 1000)
            total.append((t4 - t0) * 1000)
    return Timings(per_stage, total)


def variants(base: Config) -> Iterator[tuple[str, str, str, Config]]:
    """(backend, embedder precision, detector precision, config): every shipped embedder with
    the fp32 detector, then int8 embedder and detector together, per backend."""
    for backend in RUNTIME_SUFFIX:
        combinations = [(p, "fp32") for p in shipped_precisions(EMBEDDING_MODEL, backend)]
        if "int8" in shipped_precisions(f"blazeface_{base.detector.model}", backend):
            combinations.append(("int8", "int8"))
        for embedder, detector in combinations:
            data = base.model_dump()
            data["runtime"]["backend"] = backend
            data["embedder"]["precision"] = embedder
            data["detector"]["precision"] = detector
            yield backend, embedder, detector, config_from_dict(data)


def run(
    base: Config,
    repeats: int = 30,
    warmup: int = 5,
    progress: Callable[[str], None] = lambda _: None,
) -> list[dict[str, Any]]:
    rows = []

    def jpeg(image: Image) -> bytes:
        return bytes(cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes())

    hd = jpeg(hd_frame())
    cases = [
        (f"{FRAME_W}x{FRAME_H}", "still", 1, jpeg(sample_frame(1))),
        (f"{FRAME_W}x{FRAME_H}", "still", 3, jpeg(sample_frame(3))),
        (f"{HD_W}x{HD_H}", "still", len(HD_FACE_PX), hd),
        (f"{HD_W}x{HD_H}", "video", len(HD_FACE_PX), hd),
    ]
    for backend, precision, detector, config in variants(base):
        name = f"{backend}/{precision}/detector {detector}"
        try:
            analyzer = FaceAnalyzer.from_config(config)
        except BackendError as exc:
            progress(f"skipped {name}: {exc}")
            continue
        for size, mode, faces, data in cases:
            progress(f"{name}, {size} {mode}, {faces} face(s)")
            found = len(analyzer.detect(decode_image(data)))
            timings = time_frames(analyzer, data, repeats, warmup, video=mode == "video")
            row: dict[str, Any] = {
                "backend": backend,
                "precision": precision,
                "detector_precision": detector,
                "frame": size,
                "mode": mode,
                "faces": faces,
                "faces_found": found,
                "threads": config.runtime.threads,
            }
            for stage, values in timings.per_stage.items():
                row[f"{stage}_ms_p50"] = round(float(np.median(values)), 2)
                row[f"{stage}_ms_p90"] = round(float(np.percentile(values, 90)), 2)
            row["fps"] = round(1000 / float(np.median(timings.total)), 1)
            rows.append(row)
    return rows
