"""The ``--annotate`` review video: every processed frame with boxes, track ids and match labels.

It shows everyone in view, so it is for reviewing recorded footage, never for the appliance's
normal running. By default (``run.annotate_unmatched: pixelate``) the faces of tracks that
matched nothing are pixelated in it.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from edge.errors import EdgeError
from edge.pipeline.frames import FaceView
from edge.types import Image

log = logging.getLogger(__name__)

MATCHED = (0, 200, 0)  # BGR
UNMATCHED = (200, 200, 200)
_PIXEL_BLOCKS = 8
_FOURCC = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG", ".mkv": "MJPG"}


def pixelate(image: Image, box: tuple[int, int, int, int]) -> None:
    x1, y1, x2, y2 = box
    region = image[y1:y2, x1:x2]
    if region.size == 0:
        return
    small = cv2.resize(region, (_PIXEL_BLOCKS, _PIXEL_BLOCKS), interpolation=cv2.INTER_AREA)
    image[y1:y2, x1:x2] = cv2.resize(small, (x2 - x1, y2 - y1), interpolation=cv2.INTER_NEAREST)


def fit(image: Image, size: tuple[int, int]) -> Image:
    """``image`` scaled to fit ``size`` (width, height), centred on black."""
    width, height = size
    scale = min(width / image.shape[1], height / image.shape[0])
    new_w = max(1, min(width, round(image.shape[1] * scale)))
    new_h = max(1, min(height, round(image.shape[0] * scale)))
    canvas = np.zeros((height, width, 3), dtype=np.uint8)
    x, y = (width - new_w) // 2, (height - new_h) // 2
    canvas[y : y + new_h, x : x + new_w] = cv2.resize(image, (new_w, new_h))
    return canvas


class Annotator:
    """Writes annotated frames to a video file (opened on the first frame, at its size)."""

    def __init__(
        self, path: Path, fps: float, unmatched: Literal["pixelate", "show"] = "pixelate"
    ) -> None:
        fourcc = _FOURCC.get(path.suffix.lower())
        if fourcc is None:
            raise EdgeError(f"--annotate {path}: use a .mp4, .m4v, .mov, .avi or .mkv file name")
        if not path.parent.is_dir():
            raise EdgeError(f"--annotate {path}: folder {path.parent} does not exist")
        self.path = path
        self.fps = fps
        self.unmatched = unmatched
        self.frames = 0
        self._fourcc = cv2.VideoWriter.fourcc(*fourcc)
        self._writer: cv2.VideoWriter | None = None
        self._size = (0, 0)

    def write(self, image: Image, faces: list[FaceView]) -> None:
        canvas = image.copy()
        height, width = canvas.shape[:2]
        if self._writer is None:
            self._size = (width, height)
            self._writer = cv2.VideoWriter(str(self.path), self._fourcc, self.fps, self._size)
            if not self._writer.isOpened():
                self._writer = None
                raise EdgeError(f"cannot write video {self.path}")
        for face in faces:
            x1, y1, x2, y2 = (round(v) for v in face.box)
            x1, y1 = max(0, x1), max(0, y1)
            x2, y2 = min(width, x2), min(height, y2)
            matched = face.label is not None
            if not matched and self.unmatched == "pixelate":
                pixelate(canvas, (x1, y1, x2, y2))
            colour = MATCHED if matched else UNMATCHED
            cv2.rectangle(canvas, (x1, y1), (x2, y2), colour, 2)
            text = f"#{face.track_id}" + (f" {face.label}" if matched else "")
            (text_w, _), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1)
            cv2.putText(
                canvas,
                text,
                (max(0, min(x1, width - text_w)), max(12, y1 - 6)),
                cv2.FONT_HERSHEY_SIMPLEX,
                0.5,
                colour,
                1,
                cv2.LINE_AA,
            )
        if (width, height) != self._size:
            canvas = fit(canvas, self._size)  # a folder of stills of different sizes
        self._writer.write(canvas)
        self.frames += 1

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None
            log.info("wrote %d annotated frames to %s", self.frames, self.path)
