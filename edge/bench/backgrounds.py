"""Real-scene backgrounds for the far-face scenes of ``edge bench far``, never a flat colour.

A frame of a real clip, randomly cropped (60-100 % of its area), mirrored or not and scaled up
to the frame size; a guillotine mosaic of cells that each show a zoomed part of a clip frame, a
"wall" of face photos (identities reserved for backgrounds), or one of the caller's extra
images; or one of those extra images on its own. Each is a deterministic function of the random
generator handed in. The real faces in a background are found by the caller
(:class:`edge.bench.groundtruth.Scanner`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from edge.errors import EdgeError, ImageError
from edge.types import Box, Image

CLIP_CROP_SHARE = (0.6, 1.0)  # of a clip frame's area, for a whole-frame background
COVER_ZOOM = (1.0, 2.5)  # beyond just covering a mosaic cell
WALL_SCALE = (0.8, 1.6)  # of a wall photo's own size


@dataclass
class Background:
    image: Image  # (height, width, 3) BGR
    kind: str  # "clip", "extra", or "mosaic:" and its cells' kinds (e.g. "mosaic:clip,wall")
    faces: list[Box] = field(default_factory=list)  # real faces already in it (caller's scan)


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
