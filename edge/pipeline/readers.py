"""Files, folders of stills and cameras, each read frame by frame into BGR uint8 arrays.

:class:`VideoReader` reads a video file or a camera with OpenCV; :class:`FolderReader` the
stills of a folder, in name order. Network streams have their own reader
(:class:`edge.pipeline.stream.StreamReader`); :class:`edge.pipeline.capture.Capture` runs any of
them on its thread and reconnects a live one that fails.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import cv2
import numpy as np

from edge.errors import CaptureError, ImageError, SourceError
from edge.pipeline.images import read_image
from edge.pipeline.source import SourceSpec
from edge.types import Image

# Logged as the capture: these lines have always named edge.pipeline.capture (log format, filters).
log = logging.getLogger("edge.pipeline.capture")

# libav prints its own complaints about damaged files to stderr; Capture reports them once
# instead. Read when OpenCV's FFmpeg backend first opens something.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

STILL_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
_MAX_SANE_FPS = 240.0
# A failed read of a file is not its end: damaged data makes the decoder fail and then pick up
# again at the next good frame (OpenCV's own read already skips up to 512 bad packets). Only
# this many failed reads in a row, or a failure once the declared frame count is reached, end
# a file. At the real end each failed read returns at once, so the bound costs nothing.
MAX_FAILED_READS = 50
_DECODE_WARNINGS = 5  # damaged stretches logged one by one; the end-of-file line counts them all


class VideoReader:
    """One open OpenCV capture of a file or camera."""

    def __init__(self, spec: SourceSpec) -> None:
        self.spec = spec
        self.fps: float | None = None
        self.frame_size: tuple[int, int] | None = None  # width, height, if the source says
        self.frame_count = 0  # frames a file declares (0: unknown)
        self.decoded = 0  # frames read
        self.damaged = 0  # stretches of undecodable data skipped (failed reads before a frame)
        self._failed = 0  # failed reads in a row
        self._cap: cv2.VideoCapture | None = None

    def open(self) -> None:
        spec = self.spec
        try:
            if spec.kind == "camera":
                device: int | str = int(spec.target) if spec.target.isdigit() else spec.target
                cap = cv2.VideoCapture(device, cv2.CAP_V4L2)
                if not cap.isOpened():
                    cap.release()
                    cap = cv2.VideoCapture(device, cv2.CAP_ANY)
            else:
                cap = cv2.VideoCapture(spec.target, cv2.CAP_FFMPEG)
        except cv2.error as exc:
            raise CaptureError(f"cannot open {spec.name}: {exc.err or exc}") from exc
        if not cap.isOpened():
            cap.release()
            what = "video" if spec.kind == "file" else spec.kind
            raise CaptureError(f"cannot open {what} {spec.name}")
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self.fps = fps if 0.0 < fps <= _MAX_SANE_FPS else None
        width, height = (
            int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
            int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
        )
        self.frame_size = (width, height) if width > 0 and height > 0 else None
        if spec.kind == "file":
            self.frame_count = max(int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0), 0)
        self._cap = cap

    @property
    def corrupt(self) -> int:
        """Frames of a file that could not be decoded: how many fewer it gave than it declares,
        or (no declared count) the damaged stretches skipped. Final once :meth:`read` ended."""
        if self.frame_count:
            return max(self.frame_count - self.decoded, 0)
        return self.damaged

    def read(self) -> tuple[Image, float | None] | None:
        """The next frame and, for a file, its media time in seconds; None at the end or when
        the source fails. A file skips undecodable frames and reads on to its real end."""
        while self._cap is not None:
            try:
                ok, image = self._cap.read()
            except cv2.error as exc:
                log.warning("%s: read failed: %s", self.spec.name, exc.err or exc)
                ok, image = False, None
            if ok and image is not None:
                if self._failed:
                    self.damaged += 1
                    self._failed = 0
                self.decoded += 1
                pts = None
                if self.spec.kind == "file":
                    pts = float(self._cap.get(cv2.CAP_PROP_POS_MSEC)) / 1000.0
                return np.ascontiguousarray(image, dtype=np.uint8), pts
            if self.spec.kind != "file":
                return None  # a live source: Capture reconnects
            if self.frame_count and self.decoded >= self.frame_count:
                return None  # the declared end
            self._failed += 1
            if self._failed >= MAX_FAILED_READS:
                return None  # nothing decodes any more: the end, or damage up to it
            if self._failed == 1 and self.damaged < _DECODE_WARNINGS:
                log.warning(
                    "%s: cannot decode the frame after frame %d (damaged data); skipping it",
                    self.spec.name,
                    self.decoded,
                )
        return None

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


class FolderReader:
    """The still images of a folder, in name order; unreadable ones are skipped with a warning."""

    def __init__(self, spec: SourceSpec) -> None:
        self.spec = spec
        self.fps: float | None = None
        self.corrupt = 0  # stills that could not be read
        self._paths: list[Path] = []
        self._next = 0

    def open(self) -> None:
        folder = Path(self.spec.target)
        try:
            self._paths = sorted(
                p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in STILL_SUFFIXES
            )
        except OSError as exc:
            raise CaptureError(f"cannot read folder {folder}: {exc.strerror or exc}") from exc
        if not self._paths:
            raise SourceError(
                f"folder {folder} holds no image ({', '.join(sorted(STILL_SUFFIXES))})"
            )

    def read(self) -> tuple[Image, float | None] | None:
        while self._next < len(self._paths):
            path = self._paths[self._next]
            self._next += 1
            try:
                return read_image(path), None
            except ImageError as exc:
                self.corrupt += 1
                log.warning("skipping %s", exc)
        return None

    def close(self) -> None:
        self._paths = []
