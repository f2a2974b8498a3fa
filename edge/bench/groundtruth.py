"""Where the real faces are, for the far-face scenes of ``edge bench far``: ground truth only.

- Real faces in a background (the people in the clip, the faces on a wall) are found by the
  most sensitive scan we have (:class:`Scanner`: the production detector's whole-image pass at
  a low threshold on the whole frame and on 768-, 512- and 256-px tiles).
- A source photo's labelled face is the production detector's box on the full-size photo; its
  other faces come from the same scan of the 2x-upscaled photo, whole and in tiles, at a lower
  threshold (:class:`Photos`).

The detector under test is whatever ``FaceAnalyzer.detect`` does; these scans only say where a
detection counts as a hit, as a false detection, or as neither.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np

from edge.backends import open_session
from edge.bench.scenes import Region, SourceFace, area, inside, overlap
from edge.config import Config
from edge.config.recognition import DetectorConfig
from edge.pipeline.analyzer import FaceAnalyzer
from edge.pipeline.detect import FaceDetector
from edge.pipeline.images import read_image
from edge.pipeline.pick import nearest_to_centre
from edge.types import Box, Image, iou

RETRY_SCORE_THRESHOLD = 0.1  # finding the labelled face of a full-size source photo
# The ground-truth scan for real faces: lower threshold, smaller faces, finer tiles than any
# detector under test. Backgrounds: whole frame, then 768-, 512- and 256-px tiles at 0.4.
# Source photos: 2x upscaled, whole and 256-px tiles at 0.3 (finds the faces cut at a photo's
# edge: 42 other faces in 300 LFW photos, about 30 of them real by eye, where the production
# detector at full size finds 15), boxes under a fifth of the labelled face's width dropped.
SCAN_THRESHOLD = 0.4
PHOTO_SCAN_THRESHOLD = 0.3
SCAN_MIN_FACE_PX = 6
BACKGROUND_LEVELS = ((768, 256), (512, 192), (256, 128))
PHOTO_UPSCALE = 2.0
PHOTO_LEVELS = ((256, 128),)


def tiles(width: int, height: int, side: int, overlap_px: int) -> list[Region]:
    """Square regions of ``side`` (cut to the frame) covering it, neighbours sharing at least
    ``overlap_px``; the last row and column end at the frame's edge."""

    def starts(extent: int) -> list[int]:
        if extent <= side:
            return [0]
        step = max(1, side - overlap_px)
        out = list(range(0, extent - side, step))
        return [*out, extent - side]

    return [
        (x, y, min(x + side, width), min(y + side, height))
        for y in starts(height)
        for x in starts(width)
    ]


def dedupe(boxes: Sequence[Box], iou_max: float = 0.5) -> list[Box]:
    """The boxes, each dropped that overlaps an earlier kept one above ``iou_max``."""
    kept: list[Box] = []
    for b in boxes:
        if all(iou(b, k) <= iou_max for k in kept):
            kept.append(b)
    return kept


def sensitive_scan(
    image: Image,
    detect: Callable[[Image], list[Box]],
    levels: Sequence[tuple[int, int]],
) -> list[Box]:
    """Every face ``detect`` finds in the whole image and in each tile of each (side, overlap)
    level, in image pixels, near-duplicates merged. ``detect`` should be more sensitive than
    the detector under test (a lower threshold, smaller faces kept)."""
    height, width = image.shape[:2]
    found = list(detect(image))
    for side, overlap_px in levels:
        if side >= max(width, height):
            continue
        for x1, y1, x2, y2 in tiles(width, height, side, overlap_px):
            for b in detect(image[y1:y2, x1:x2]):
                found.append((b[0] + x1, b[1] + y1, b[2] + x1, b[3] + y1))
    return dedupe(found)


def other_faces(found: Sequence[Box], labelled: Box, min_share: float = 0.2) -> tuple[Box, ...]:
    """The faces of ``found`` that are someone else: not the labelled face nor a part of it
    (overlapping it much, holding its centre, or lying mostly inside it), and at least
    ``min_share`` of its width (smaller boxes in a photo are mostly ears, logos and folds). A
    neighbour's face may reach into the labelled box (heads close together)."""
    cx, cy = (labelled[0] + labelled[2]) / 2, (labelled[1] + labelled[3]) / 2
    width = labelled[2] - labelled[0]
    return tuple(
        b
        for b in found
        if iou(b, labelled) < 0.3
        and not inside(cx, cy, b)
        and overlap(b, labelled) < 0.8 * area(b)
        and b[2] - b[0] >= min_share * width
    )


class Scanner:
    """The production detector's whole-image pass on the image and on tiles, at a low threshold,
    keeping small faces: the most sensitive scan we have, for ground truth only."""

    def __init__(self, config: Config) -> None:
        settings = DetectorConfig(
            model="full_range",
            score_threshold=SCAN_THRESHOLD,
            nms_iou=config.detector.nms_iou,
            min_face_px=SCAN_MIN_FACE_PX,
            max_faces=1000,
        )
        session = open_session(
            "blazeface_full_range", config.runtime.backend, config.runtime.threads
        )
        self._detector = FaceDetector(session, settings)

    def _boxes(self, image: Image) -> list[Box]:
        return [d.box for d in self._detector.detect(image)]

    def _photo_boxes(self, image: Image) -> list[Box]:
        return [d.box for d in self._detector.detect(image, score_threshold=PHOTO_SCAN_THRESHOLD)]

    def background(self, image: Image) -> list[Box]:
        return sensitive_scan(image, self._boxes, BACKGROUND_LEVELS)

    def photo(self, image: Image) -> list[Box]:
        """Faces of a (small) photo, found on a 2x upscale, in the photo's pixels."""
        big: Image = np.asarray(
            cv2.resize(
                image, None, fx=PHOTO_UPSCALE, fy=PHOTO_UPSCALE, interpolation=cv2.INTER_CUBIC
            ),
            dtype=np.uint8,
        )
        found = sensitive_scan(big, self._photo_boxes, PHOTO_LEVELS)
        k = 1.0 / PHOTO_UPSCALE
        return [(b[0] * k, b[1] * k, b[2] * k, b[3] * k) for b in found]


class Photos:
    """Source photos, read once, with the labelled face (the production detector on the full-
    size photo, looking again at a low threshold when it finds nothing; the face nearest the
    centre) and the photo's other faces (:meth:`Scanner.photo`)."""

    def __init__(self, analyzer: FaceAnalyzer, scanner: Scanner) -> None:
        self._analyzer = analyzer
        self._scanner = scanner
        self._faces: dict[Path, SourceFace | None] = {}
        self._images: dict[Path, Image] = {}

    def image(self, path: Path) -> Image:
        if path not in self._images:
            self._images[path] = read_image(path)
        return self._images[path]

    def face(self, name: str, path: Path) -> SourceFace | None:
        if path not in self._faces:
            image = self.image(path)
            found = self._analyzer.detect(image) or self._analyzer.detector.detect(
                image, score_threshold=RETRY_SCORE_THRESHOLD
            )
            if not found:
                self._faces[path] = None
            else:
                box = nearest_to_centre(found, image).box
                others = other_faces(self._scanner.photo(image), box)
                self._faces[path] = SourceFace(name, path, box, others)
        return self._faces[path]
