"""Synthetic far-face scenes for ``edge bench far``: real face photos, shrunk, in real scenes.

- Faces. A source photo (an LFW image) and where its labelled face is: the production
  detector's box on the full-size photo, plus the other faces a sensitive scan finds in it
  (:class:`Photos`: the 2x-upscaled photo scanned whole and in tiles at a low threshold). The
  WHOLE photo is scaled so that the labelled face's box is ``W`` px wide and blended in through a
  mask whose outer ``FEATHER`` of each side fades out (cosine), so the head keeps its hair,
  shoulders and context. (A soft ellipse around the face alone made BlazeFace much worse, and is
  not how people look.) The photo's other faces become ignore regions.
- Backgrounds, never a flat colour: a frame of a real clip, randomly cropped (60-100 % of its
  area), mirrored or not and scaled up to the frame size; a guillotine mosaic of cells that each
  show a zoomed part of a clip frame, a "wall" of face photos (identities reserved for
  backgrounds), or one of the caller's extra images; or one of those extra images on its own.
- Real faces in a background (the people in the clip, the faces on a wall) are found by the
  most sensitive scan we have (:class:`Scanner`: the production detector's whole-image pass at
  a low threshold on the whole frame and on 768-, 512- and 256-px tiles). A pasted face keeps
  clear of them, unless its photo hides one whole (it is then gone), and a detection on one
  counts neither as a hit nor as a false detection (:func:`score`).
- Camera-like finish: a slight optical blur (sigma ``BLUR_SIGMA``), then a JPEG round trip
  (quality ``JPEG_QUALITY``).

Everything is a function of the random generator handed in: the same seed gives the same bytes.
The scans are ground truth only; the detector under test is whatever ``FaceAnalyzer.detect``
does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from edge.backends import open_session
from edge.config import Config
from edge.config.recognition import DetectorConfig
from edge.errors import EdgeError, ImageError
from edge.pipeline.analyzer import FaceAnalyzer
from edge.pipeline.capture import read_image
from edge.pipeline.detect import FaceDetector
from edge.pipeline.pick import nearest_to_centre
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
CLIP_CROP_SHARE = (0.6, 1.0)  # of a clip frame's area, for a whole-frame background
COVER_ZOOM = (1.0, 2.5)  # beyond just covering a mosaic cell
WALL_SCALE = (0.8, 1.6)  # of a wall photo's own size
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


@dataclass
class Background:
    image: Image  # (height, width, 3) BGR
    kind: str  # "clip", "extra", or "mosaic:" and its cells' kinds (e.g. "mosaic:clip,wall")
    faces: list[Box] = field(default_factory=list)  # real faces already in it (caller's scan)


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


def _inside(x: float, y: float, b: Box) -> bool:
    return b[0] <= x <= b[2] and b[1] <= y <= b[3]


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


def on_ignored_face(box: Box, ignore: Sequence[Box]) -> bool:
    """A detection on a real (ignored) face: IoU above 0.2, its centre within the face grown
    by ``AVOID_GROW``, or the face's centre inside it (boxes of partly hidden faces vary)."""
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    for face in ignore:
        if iou(box, face) > 0.2 or _inside(cx, cy, grow(face, AVOID_GROW)):
            return True
        if _inside((face[0] + face[2]) / 2, (face[1] + face[3]) / 2, box):
            return True
    return False


# --- backgrounds ----------------------------------------------------------------------------


def read_clip(path: Path, step: int = 5) -> list[Image]:
    """Every ``step``-th frame of a video file."""
    capture = cv2.VideoCapture(str(path))
    frames: list[Image] = []
    index = 0
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            if index % step == 0:
                frames.append(np.ascontiguousarray(frame, dtype=np.uint8))
            index += 1
    finally:
        capture.release()
    if not frames:
        raise ImageError(f"{path}: no video frames could be read")
    return frames


def _crop_share(image: Image, share: float, rng: np.random.Generator) -> Image:
    """A random crop of ``share`` of the image's area (same aspect), mirrored half the time."""
    h, w = image.shape[:2]
    cw, ch = max(1, int(w * np.sqrt(share))), max(1, int(h * np.sqrt(share)))
    x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
    crop = image[y : y + ch, x : x + cw]
    return crop[:, ::-1] if rng.random() < 0.5 else crop


def _cover(image: Image, w: int, h: int, rng: np.random.Generator, zoom: float) -> Image:
    """A random part of the image scaled to cover exactly ``w`` x ``h`` (zoomed ``zoom`` x
    beyond just covering it), mirrored half the time."""
    ih, iw = image.shape[:2]
    scale = max(w / iw, h / ih) * zoom
    sw, sh = max(w, int(np.ceil(iw * scale))), max(h, int(np.ceil(ih * scale)))
    method = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    resized = np.asarray(cv2.resize(image, (sw, sh), interpolation=method), dtype=np.uint8)
    if rng.random() < 0.5:
        resized = resized[:, ::-1]
    x, y = int(rng.integers(0, sw - w + 1)), int(rng.integers(0, sh - h + 1))
    return np.ascontiguousarray(resized[y : y + h, x : x + w])


class BackgroundMaker:
    """Real-scene backgrounds of one size, each a deterministic function of the generator.

    ``clip_frames``: frames of a real clip (at least one); ``wall_photos``: photos of people
    reserved for backgrounds (read when first used); ``extras``: any other scene images."""

    def __init__(
        self,
        size: tuple[int, int],
        clip_frames: Sequence[Image],
        wall_photos: Sequence[Path] = (),
        extras: Sequence[Image] = (),
    ) -> None:
        if not clip_frames:
            raise EdgeError("backgrounds need at least one clip frame")
        self.width, self.height = size
        self._clip = list(clip_frames)
        self._walls = list(wall_photos)
        self._extras = list(extras)
        self._photos: dict[Path, Image] = {}

    def make(self, rng: np.random.Generator) -> Background:
        r = float(rng.random())
        p_whole = 0.4 if self._extras else 0.5
        if r < p_whole:
            frame = self._clip[int(rng.integers(len(self._clip)))]
            return Background(self._whole(frame, rng), "clip")
        if self._extras and r >= 0.8:
            extra = self._extras[int(rng.integers(len(self._extras)))]
            return Background(self._whole(extra, rng), "extra")
        image, cells = self._mosaic(rng)
        return Background(image, "mosaic:" + ",".join(cells))

    def _whole(self, image: Image, rng: np.random.Generator) -> Image:
        crop = _crop_share(image, float(rng.uniform(*CLIP_CROP_SHARE)), rng)
        return _cover(crop, self.width, self.height, rng, 1.0)

    def _mosaic(self, rng: np.random.Generator) -> tuple[Image, list[str]]:
        canvas = np.zeros((self.height, self.width, 3), np.uint8)
        cells = []
        kinds = ["clip"] + (["wall"] if self._walls else []) + (["extra"] if self._extras else [])
        min_side = max(64, min(self.width, self.height) // 3)
        for x, y, w, h in _guillotine((0, 0, self.width, self.height), rng, 0, min_side):
            kind = kinds[int(rng.integers(len(kinds)))]
            zoom = float(rng.uniform(*COVER_ZOOM))
            if kind == "wall":
                cell = self._wall(w, h, rng)
            elif kind == "extra":
                cell = _cover(self._extras[int(rng.integers(len(self._extras)))], w, h, rng, zoom)
            else:
                cell = _cover(self._clip[int(rng.integers(len(self._clip)))], w, h, rng, zoom)
            canvas[y : y + h, x : x + w] = cell
            cells.append(kind)
        return canvas, cells

    def _wall(self, w: int, h: int, rng: np.random.Generator) -> Image:
        """Photos side by side in a grid, each at 0.8-1.6 x its own size (one size per wall)."""
        cell = np.zeros((h, w, 3), np.uint8)
        scale = float(rng.uniform(*WALL_SCALE))
        y = 0
        while y < h:
            x = 0
            row_h = 1
            while x < w:
                photo = self._photo(self._walls[int(rng.integers(len(self._walls)))])
                ph, pw = (max(1, round(s * scale)) for s in photo.shape[:2])
                tile = cv2.resize(photo, (pw, ph), interpolation=cv2.INTER_AREA)
                cell[y : y + ph, x : x + pw] = tile[: h - y, : w - x]
                x += pw
                row_h = max(row_h, ph)
            y += row_h
        return cell

    def _photo(self, path: Path) -> Image:
        if path not in self._photos:
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is None:
                raise ImageError(f"{path}: cannot read this background photo")
            self._photos[path] = np.asarray(image, dtype=np.uint8)
        return self._photos[path]


def _guillotine(
    cell: tuple[int, int, int, int], rng: np.random.Generator, depth: int, min_side: int
) -> list[tuple[int, int, int, int]]:
    """A random split of the cell (x, y, w, h) into 1-8 cells, cut across its longer side."""
    x, y, w, h = cell
    if depth >= 3 or (depth >= 1 and rng.random() < 0.3) or min(w, h) < min_side:
        return [cell]
    if w >= h:
        cut = int(w * rng.uniform(0.35, 0.65))
        first, second = (x, y, cut, h), (x + cut, y, w - cut, h)
    else:
        cut = int(h * rng.uniform(0.35, 0.65))
        first, second = (x, y, w, cut), (x, y + cut, w, h - cut)
    return _guillotine(first, rng, depth + 1, min_side) + _guillotine(
        second, rng, depth + 1, min_side
    )


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
        and not _inside(cx, cy, b)
        and overlap(b, labelled) < 0.8 * area(b)
        and b[2] - b[0] >= min_share * width
    )


# --- finding faces in source photos and backgrounds -------------------------------------------


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
