"""The context frame of an alert: the scene around the matched face, every other face blurred.

A dispatcher sees where in the scene the person is, and nobody else: the frame of the matched
shot is scaled to at most ``alerts.context_width`` px wide and every face in it but the matched
one is pixelated beyond recognition before the JPEG is encoded, in memory, from the blurred
copy. The unblurred frame is never written anywhere and the JPEG is kept only with its shot.

Which regions are blurred, all of them unless they are the matched face itself:

- the boxes the caller passes: the frame's detections and every other live track's box, last
  seen and predicted (a face the tracker follows but this frame's tile rotation missed);
- every face of a sensitive scan of the whole frame (:meth:`ContextMaker.faces`): the
  whole-frame pass and every tile of a plan that finds faces down to the smaller of
  ``detector.smallest_face_px`` and :data:`SMALLEST_FACE_PX` context pixels, at a lower
  confidence than detection's, with no face-mesh check, each face's box the span of every
  candidate that merged into it. In doubt, a region is blurred.

With ``alerts.context_background: blurred`` (the default) the whole scene is blurred first as
well (a Gaussian of :data:`BACKGROUND_BLUR` of the context's width), except the matched person's
head and shoulders (:data:`PERSON_REGION`): a face that no pass found, a profile or a turned
head, is then no sharper than the street around it.

A blurred region is the face's box grown by :data:`BLUR_MARGIN` of its size on each side (hair,
ears and the head's outline go too), averaged down to :data:`BLUR_BLOCKS` blocks along its
longer side and scaled back up smoothly: a handful of colours is all that is left of a face.
Measured in tests/integration/test_context.py (LFW faces in a real scene). Only the margin
stops at the matched face's box: another face's own box is blurred even where it overlaps the
matched one (the privacy of a non-match comes before the picture of the match, which the
alert's crop shows anyway).

The scan runs for matched shots that may become an alert only (the decision stage says which:
:meth:`edge.pipeline.decide.Decider.wants_context`); its cost is the ``context`` stage of the
run's latencies.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Literal

import cv2
import numpy as np

from edge.pipeline.analyzer import FaceAnalyzer
from edge.pipeline.detect import Candidates, weighted_nms
from edge.pipeline.tiles import Region, derived_levels, tile_grid
from edge.types import Box, ContextFrame, Image, iou

CONTEXT_JPEG_QUALITY = 80
MAX_SIDE = 4096  # the alert schema's bound on either side of the JPEG
BLUR_MARGIN = 0.4  # of the face box's width (height) added on each side before blurring
BLUR_BLOCKS = 3  # a blurred region keeps this many blocks along its longer side
# The background blur's sigma, as a fraction of the context's width: 640 px -> 12 px, which
# leaves a face of up to ~60 px a smear (measured in tests/integration/test_context.py).
BACKGROUND_BLUR = 1 / 54
# The matched person kept sharp: their face box grown by these fractions of its width (left,
# right) and height (up, down): the head, the shoulders and what they wear near the face.
PERSON_REGION = (0.6, 0.6, 0.4, 1.2)
SCAN_THRESHOLD = 0.25  # detection's is 0.5: a doubtful face is blurred, not shown
# Context pixels: the scan's tiles are planned to find faces this wide about 60 % of the time and
# wider ones reliably. Tiles are never enlarged, so a frame no wider than the context frame is
# searched from about 16 px.
SMALLEST_FACE_PX = 12.0
# A box overlapping the matched face this much, or lying mostly inside it, is that face (its own
# track, or the scan's box for it): two faces cannot share one place in a frame.
SAME_FACE_IOU = 0.4
SAME_FACE_INSIDE = 0.6
Background = Literal["blurred", "sharp"]


def context_scale(frame_w: int, frame_h: int, width: int) -> float:
    """The factor that brings a frame to at most ``width`` px wide (never enlarged)."""
    return min(1.0, width / frame_w, MAX_SIDE / frame_h)


def blur_region(image: Image, region: tuple[int, int, int, int]) -> None:
    """Pixelate ``region`` (x1, y1, x2, y2, pixels) of ``image`` in place: averaged down to
    :data:`BLUR_BLOCKS` blocks along its longer side, then scaled back up smoothly."""
    x1, y1, x2, y2 = region
    patch = image[y1:y2, x1:x2]
    if patch.size == 0:
        return
    height, width = patch.shape[:2]
    block = max(height, width) / BLUR_BLOCKS
    blocks = (max(1, round(width / block)), max(1, round(height / block)))
    small = cv2.resize(patch, blocks, interpolation=cv2.INTER_AREA)
    image[y1:y2, x1:x2] = cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)


def is_same_face(box: Box, matched: Box) -> bool:
    if iou(box, matched) >= SAME_FACE_IOU:
        return True
    w = min(box[2], matched[2]) - max(box[0], matched[0])
    h = min(box[3], matched[3]) - max(box[1], matched[1])
    area = (box[2] - box[0]) * (box[3] - box[1])
    return w > 0 and h > 0 and area > 0 and w * h >= SAME_FACE_INSIDE * area


def _scaled(box: Box, scale: float, size: tuple[int, int], margin: float) -> tuple[int, ...]:
    """``box`` in context pixels, grown by ``margin`` of its size on each side, rounded
    outwards and clipped to the context."""
    x1, y1, x2, y2 = (v * scale for v in box)
    mx, my = (x2 - x1) * margin, (y2 - y1) * margin
    return (
        min(size[0], max(0, math.floor(x1 - mx))),
        min(size[1], max(0, math.floor(y1 - my))),
        min(size[0], max(0, math.ceil(x2 + mx))),
        min(size[1], max(0, math.ceil(y2 + my))),
    )


class ContextMaker:
    """Makes context frames at most ``width`` px wide, with ``analyzer``'s detector models."""

    def __init__(self, analyzer: FaceAnalyzer, width: int, background: Background) -> None:
        self.analyzer = analyzer
        self.width = width
        self.background = background
        self._tiles: dict[tuple[int, int], list[Region]] = {}

    def tiles(self, frame_w: int, frame_h: int) -> list[Region]:
        """Every tile the scan of a frame of this size looks at (besides the whole frame)."""
        key = (frame_w, frame_h)
        if key not in self._tiles:
            scale = context_scale(frame_w, frame_h, self.width)
            smallest = min(self.analyzer.config.detector.smallest_face_px, SMALLEST_FACE_PX / scale)
            levels = derived_levels(frame_w, frame_h, smallest)
            self._tiles[key] = [
                tile
                for index, level in enumerate(levels)
                for tile in tile_grid(frame_w, frame_h, level.tile_px, level.overlap_px, index)
            ]
        return self._tiles[key]

    def faces(self, image: Image) -> list[Box]:
        """Every face the sensitive scan finds in ``image`` (frame pixels), each as the span of
        the candidates merged into it."""
        height, width = image.shape[:2]
        parts = [self.analyzer.detector.candidates(image, SCAN_THRESHOLD)]
        tiles = self.tiles(width, height)
        if tiles:
            model = self.analyzer.multiscale.tiles  # loaded on first use
            parts += [model.candidates(image, SCAN_THRESHOLD, tile.rect) for tile in tiles]
        found = Candidates.concat(parts)
        spans: list[Box] = []
        for *_, members in weighted_nms(found, self.analyzer.config.detector.nms_iou):
            boxes = found.boxes[members]
            x1, y1 = np.min(boxes[:, :2], axis=0)
            x2, y2 = np.max(boxes[:, 2:], axis=0)
            spans.append((float(x1), float(y1), float(x2), float(y2)))
        return spans

    def make(self, image: Image, matched: Box, others: Iterable[Box] = ()) -> ContextFrame | None:
        """The context frame of ``image`` (frame pixels) for the face at ``matched``; ``others``
        are more regions to blur (the frame's other detections and tracks), besides every face
        the scan finds. None if the JPEG cannot be encoded."""
        others = [*others, *self.faces(image)]
        return encode_context(image, matched, others, self.width, self.background)


def _blur_background(canvas: Image, matched: tuple[int, ...], size: tuple[int, int]) -> None:
    """Blur ``canvas`` in place outside the matched person's head and shoulders."""
    x1, y1, x2, y2 = matched
    w, h = x2 - x1, y2 - y1
    left, right, up, down = PERSON_REGION
    px1, py1 = max(0, math.floor(x1 - left * w)), max(0, math.floor(y1 - up * h))
    px2, py2 = min(size[0], math.ceil(x2 + right * w)), min(size[1], math.ceil(y2 + down * h))
    person = canvas[py1:py2, px1:px2].copy()
    sigma = max(2.0, size[0] * BACKGROUND_BLUR)
    canvas[:] = cv2.GaussianBlur(canvas, (0, 0), sigma)
    canvas[py1:py2, px1:px2] = person


def encode_context(
    image: Image,
    matched: Box,
    blur: Iterable[Box],
    width: int,
    background: Background = "blurred",
) -> ContextFrame | None:
    """``image`` at most ``width`` px wide with every ``blur`` box that is not the ``matched``
    face pixelated (and, ``background`` 'blurred', all but the matched person blurred), as a
    JPEG made in memory from the blurred copy (``image`` itself is left as it was); None if the
    JPEG cannot be encoded."""
    height, frame_w = image.shape[:2]
    scale = context_scale(frame_w, height, width)
    size = (max(1, round(frame_w * scale)), max(1, round(height * scale)))
    if scale < 1:
        canvas = np.asarray(cv2.resize(image, size, interpolation=cv2.INTER_AREA), np.uint8)
    else:
        canvas = image.copy()
    mx1, my1, mx2, my2 = _scaled(matched, scale, size, 0.0)
    if background == "blurred":
        _blur_background(canvas, (mx1, my1, mx2, my2), size)
    face = canvas[my1:my2, mx1:mx2].copy()
    restore = np.ones(face.shape[:2], dtype=bool)  # the matched face's pixels no box covers
    for box in blur:
        if is_same_face(box, matched):
            continue
        x1, y1, x2, y2 = _scaled(box, scale, size, BLUR_MARGIN)
        blur_region(canvas, (x1, y1, x2, y2))
        x1, y1, x2, y2 = _scaled(box, scale, size, 0.0)
        restore[max(0, y1 - my1) : max(0, y2 - my1), max(0, x1 - mx1) : max(0, x2 - mx1)] = False
    # A neighbour's margin (its hair, its outline) does not reach into the matched face's box;
    # the neighbour's own box does.
    canvas[my1:my2, mx1:mx2][restore] = face[restore]
    ok, data = cv2.imencode(".jpg", canvas, [cv2.IMWRITE_JPEG_QUALITY, CONTEXT_JPEG_QUALITY])
    if not ok:
        return None
    return ContextFrame(data.tobytes(), size[0], size[1], (mx1, my1, mx2, my2))
