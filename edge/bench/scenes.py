"""Synthetic far-face scenes for ``edge bench far``: real face photos, shrunk, in real scenes.

- Faces. A source photo (an LFW image) and where its labelled face is: the production
  detector's box on the full-size photo, plus the other faces a sensitive scan finds in it
  (:class:`edge.bench.groundtruth.Photos`). The WHOLE photo is scaled so that the labelled
  face's box is ``W`` px wide and blended in through a mask whose outer ``FEATHER`` of each side
  fades out (cosine), so the head keeps its hair, shoulders and context. (A soft ellipse around
  the face alone made BlazeFace much worse, and is not how people look.) The photo's other faces
  become ignore regions.
- Backgrounds, never a flat colour (:mod:`edge.bench.backgrounds`), with their real faces found
  by the most sensitive scan we have (:mod:`edge.bench.groundtruth`). A pasted face keeps clear
  of them, unless its photo hides one whole (it is then gone), and a detection on one counts
  neither as a hit nor as a false detection (:func:`score`).
- Camera-like finish: a slight optical blur (sigma ``BLUR_SIGMA``), then a JPEG round trip
  (quality ``JPEG_QUALITY``).

Everything is a function of the random generator handed in: the same seed gives the same bytes.
The scans are ground truth only; the detector under test is whatever ``FaceAnalyzer.detect``
does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from edge.bench.backgrounds import Background
from edge.errors import ImageError
from edge.types import Box, Image, iou

Region = tuple[int, int, int, int]  # x1, y1, x2, y2 (pixels, end exclusive)
FloatImage = npt.NDArray[np.float32]

FEATHER = 0.15  # of each side of a pasted photo: its soft edge
BLUR_SIGMA = 0.6
JPEG_QUALITY = 88
MIN_GAP_PX = 8  # between two pasted photos
AVOID_GROW = 0.3  # a background face, grown by this share of its size, is kept clear ...
FACE_CLEARANCE = 0.25  # ... of a pasted face grown by this share of its size
PLACE_TRIES = 1000
MATCH_IOU = 0.5  # a detection hits a pasted face at this IoU or more
DUPLICATE_IOU = 0.05  # an unmatched detection overlapping a pasted face this much: a duplicate


@dataclass(frozen=True)
class SourceFace:
    """A photo and where its labelled face is, in the photo's pixels."""

    name: str  # the identity
    path: Path
    box: Box  # the labelled face (the production detector's box on the full-size photo)
    others: tuple[Box, ...] = ()  # any other face in the photo: ignore regions once pasted

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]


@dataclass(frozen=True, eq=False)
class Paste:
    """One face to put into a scene: its photo, the face width wanted, and the caller's tag."""

    face: SourceFace
    photo: Image
    width: float
    tag: int = -1


@dataclass(frozen=True)
class PlacedFace:
    tag: int
    name: str
    width: float
    box: Box  # the labelled face's box in the frame: the ground truth
    region: Region  # where the whole photo went


@dataclass
class Scene:
    image: Image
    faces: list[PlacedFace]
    ignore: list[Box]  # real faces that are not test faces: never hits, never false detections
    unplaced: list[int] = field(default_factory=list)  # tags of faces that found no free spot


# --- geometry -------------------------------------------------------------------------------


def area(b: Box) -> float:
    return max(0.0, b[2] - b[0]) * max(0.0, b[3] - b[1])


def overlap(a: Box, b: Box) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    return max(0.0, w) * max(0.0, h)


def grow(b: Box, share: float) -> Box:
    w, h = b[2] - b[0], b[3] - b[1]
    return (b[0] - share * w, b[1] - share * h, b[2] + share * w, b[3] + share * h)


def inside(x: float, y: float, b: Box) -> bool:
    return b[0] <= x <= b[2] and b[1] <= y <= b[3]


def on_ignored_face(box: Box, ignore: Sequence[Box]) -> bool:
    """A detection on a real (ignored) face: IoU above 0.2, its centre within the face grown
    by ``AVOID_GROW``, or the face's centre inside it (boxes of partly hidden faces vary)."""
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    for face in ignore:
        if iou(box, face) > 0.2 or inside(cx, cy, grow(face, AVOID_GROW)):
            return True
        if inside((face[0] + face[2]) / 2, (face[1] + face[3]) / 2, box):
            return True
    return False


# --- composition ----------------------------------------------------------------------------


def pasted_size(face: SourceFace, photo_hw: tuple[int, int], width: float) -> tuple[int, int]:
    """(w, h) of the whole photo scaled so that its labelled face is ``width`` px wide."""
    scale = width / face.width
    return max(1, round(photo_hw[1] * scale)), max(1, round(photo_hw[0] * scale))


def soft_mask(h: int, w: int) -> FloatImage:
    """1 in the middle, a cosine fade to 0 over the outer ``FEATHER`` of each side."""

    def ramp(n: int) -> FloatImage:
        d = np.minimum(np.arange(n) + 0.5, n - np.arange(n) - 0.5) / max(FEATHER * n, 1e-6)
        return np.asarray(0.5 - 0.5 * np.cos(np.pi * np.clip(d, 0.0, 1.0)), dtype=np.float32)

    return np.outer(ramp(h), ramp(w)).astype(np.float32)


def core(region: Box) -> Box:
    """The part of a pasted photo that its soft edge leaves fully opaque."""
    inset_x, inset_y = FEATHER * (region[2] - region[0]), FEATHER * (region[3] - region[1])
    return (region[0] + inset_x, region[1] + inset_y, region[2] - inset_x, region[3] - inset_y)


def _contains(outer: Box, inner: Box) -> bool:
    return (
        outer[0] <= inner[0]
        and outer[1] <= inner[1]
        and inner[2] <= outer[2]
        and inner[3] <= outer[3]
    )


def _place(
    rng: np.random.Generator,
    size: tuple[int, int],
    w: int,
    h: int,
    face: Box,
    taken: Sequence[Box],
    avoid: Sequence[Box],
) -> tuple[int, int] | None:
    """A random top-left for a ``w`` x ``h`` photo whose face is at ``face`` (photo pixels,
    scaled): the photo clear of the ``taken`` ones; every ``avoid`` box near the face (within
    ``FACE_CLEARANCE``) hidden whole under the photo's opaque core. Elsewhere the photo may
    cover (part of) a background face."""
    frame_w, frame_h = size
    if w > frame_w or h > frame_h:
        return None
    clear = grow(face, FACE_CLEARANCE)
    for _ in range(PLACE_TRIES):
        x = int(rng.integers(0, frame_w - w + 1))
        y = int(rng.integers(0, frame_h - h + 1))
        spot: Box = (x - MIN_GAP_PX, y - MIN_GAP_PX, x + w + MIN_GAP_PX, y + h + MIN_GAP_PX)
        if any(overlap(spot, t) > 0 for t in taken):
            continue
        near = (clear[0] + x, clear[1] + y, clear[2] + x, clear[3] + y)
        opaque = core((x, y, x + w, y + h))
        if any(overlap(near, a) > 0 and not _contains(opaque, a) for a in avoid):
            continue
        return x, y
    return None


def paste(canvas: FloatImage, item: Paste, x: int, y: int) -> tuple[Box, list[Box]]:
    """Blend the whole photo into ``canvas`` (float32, in place) at (x, y), scaled so that its
    face is ``item.width`` px wide; returns the face box and the photo's other faces there."""
    photo = item.photo
    pw, ph = pasted_size(item.face, photo.shape[:2], item.width)
    sx, sy = pw / photo.shape[1], ph / photo.shape[0]
    method = cv2.INTER_AREA if sx < 1 else cv2.INTER_CUBIC
    patch = cv2.resize(photo, (pw, ph), interpolation=method).astype(np.float32)
    mask = soft_mask(ph, pw)[:, :, None]
    region = canvas[y : y + ph, x : x + pw]
    region[:] = region * (1 - mask) + patch * mask

    def move(b: Box) -> Box:
        return (b[0] * sx + x, b[1] * sy + y, b[2] * sx + x, b[3] * sy + y)

    return move(item.face.box), [move(o) for o in item.face.others]


def finish(canvas: FloatImage) -> Image:
    """Camera-like: a little optical blur, then a JPEG round trip."""
    image = np.clip(canvas, 0, 255).astype(np.uint8)
    image = np.asarray(cv2.GaussianBlur(image, (0, 0), BLUR_SIGMA), dtype=np.uint8)
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise ImageError("JPEG encoding of a synthetic frame failed")
    return np.asarray(cv2.imdecode(data, cv2.IMREAD_COLOR), dtype=np.uint8)


def compose(background: Background, items: Sequence[Paste], rng: np.random.Generator) -> Scene:
    """Paste each face at a random free spot: its photo clear of the other photos, the face
    clear of the background's real faces unless the photo hides them whole (a face that finds
    no spot is left out and its tag listed); then finish the frame."""
    height, width = background.image.shape[:2]
    canvas = background.image.astype(np.float32)
    avoid = [grow(b, AVOID_GROW) for b in background.faces]
    taken: list[Box] = []
    faces: list[PlacedFace] = []
    ignore: list[Box] = []
    unplaced = []
    for item in items:
        w, h = pasted_size(item.face, item.photo.shape[:2], item.width)
        scale = w / item.photo.shape[1], h / item.photo.shape[0]
        b = item.face.box
        face = (b[0] * scale[0], b[1] * scale[1], b[2] * scale[0], b[3] * scale[1])
        spot = _place(rng, (width, height), w, h, face, taken, avoid)
        if spot is None:
            unplaced.append(item.tag)
            continue
        x, y = spot
        taken.append((x, y, x + w, y + h))
        box, others = paste(canvas, item, x, y)
        faces.append(PlacedFace(item.tag, item.face.name, item.width, box, (x, y, x + w, y + h)))
        ignore += others
    # A background face hidden whole under a photo's opaque core is gone; the others stay.
    cores = [core(t) for t in taken]
    visible = [
        b
        for b, a in zip(background.faces, avoid, strict=True)
        if not any(_contains(c, a) for c in cores)
    ]
    return Scene(finish(canvas), faces, visible + ignore, unplaced)


# --- scoring --------------------------------------------------------------------------------


@dataclass
class Scoring:
    """How a frame's detections relate to its ground truth (indices into the detections)."""

    hits: dict[int, int]  # placed face index -> detection index (IoU >= MATCH_IOU, one-to-one)
    false: list[int]  # on no face at all
    duplicates: list[int]  # a second or misplaced box on a pasted face
    ignored: list[int]  # on a real face of the background or of a pasted photo


def score(scene: Scene, boxes: Sequence[Box]) -> Scoring:
    truth = [f.box for f in scene.faces]
    pairs = sorted(
        ((iou(b, t), d, k) for d, b in enumerate(boxes) for k, t in enumerate(truth)),
        reverse=True,
    )
    hits: dict[int, int] = {}
    used: set[int] = set()
    for value, d, k in pairs:
        if value < MATCH_IOU:
            break
        if d in used or k in hits:
            continue
        used.add(d)
        hits[k] = d
    result = Scoring(hits, [], [], [])
    for d, box in enumerate(boxes):
        if d in used:
            continue
        on_truth = max((iou(box, t) for t in truth), default=0.0)
        on_ignored = on_ignored_face(box, scene.ignore)
        closer_to_ignored = on_ignored and max(iou(box, i) for i in scene.ignore) > on_truth
        if on_truth > DUPLICATE_IOU and not closer_to_ignored:
            result.duplicates.append(d)
        elif on_ignored:
            result.ignored.append(d)
        else:
            result.false.append(d)
    return result


def draw(scene: Scene, boxes: Sequence[Box], scoring: Scoring) -> Image:
    """The frame with its boxes: pasted faces green (hit) or yellow (missed), false detections
    red, duplicates orange, ignored real faces grey."""
    image = scene.image.copy()

    def rect(b: Box, colour: tuple[int, int, int]) -> None:
        cv2.rectangle(image, (int(b[0]), int(b[1])), (int(b[2]), int(b[3])), colour, 2)

    for b in scene.ignore:
        rect(b, (128, 128, 128))
    for k, face in enumerate(scene.faces):
        rect(face.box, (0, 200, 0) if k in scoring.hits else (0, 220, 220))
    for d in scoring.false:
        rect(boxes[d], (0, 0, 255))
    for d in scoring.duplicates:
        rect(boxes[d], (0, 128, 255))
    return image
