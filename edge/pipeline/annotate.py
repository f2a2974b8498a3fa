"""The ``--annotate`` review video: every processed frame with boxes, track ids and match labels.

It shows everyone in view, so it is for reviewing recorded footage, never for the appliance's
normal running. By default (``run.annotate_unmatched: pixelate``) the faces of tracks that
matched nothing are pixelated in it.

The file is written in a format browsers play, chosen by its suffix: ``.webm`` as VP8 (else VP9),
``.mp4`` as H.264. Which of these the OpenCV build at hand can encode is probed when the
annotator is made (pip's OpenCV wheels have the VP8/VP9 encoders but no H.264 one); a suffix it
cannot write is refused, naming what it can. An existing file is refused unless ``overwrite``.
Labels are drawn on a filled box in the track's colour, legible on any background.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import tempfile
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from edge.errors import EdgeError
from edge.pipeline.frames import FaceView
from edge.system.native import native_stderr_silenced
from edge.types import Image

log = logging.getLogger(__name__)

Colour = tuple[int, int, int]

MATCHED = (0, 200, 0)  # BGR
UNMATCHED = (200, 200, 200)
TEXT = (0, 0, 0)  # labels: black on the box colour
_PIXEL_BLOCKS = 8
_FONT, _FONT_SCALE, _PAD = cv2.FONT_HERSHEY_SIMPLEX, 0.5, 3
# Browser-playable codecs by suffix, in order of preference: (fourcc, name). VP8 before VP9: it
# encodes about 4x faster here (VP9: 2-3 frames/s at 640x360 on one x86 core), and every
# current browser plays both.
BROWSER_CODECS: dict[str, tuple[tuple[str, str], ...]] = {
    ".webm": (("VP80", "VP8"), ("VP90", "VP9")),
    ".mp4": (("avc1", "H.264"),),
}
_probed: dict[str, tuple[str, str] | None] = {}
# FFmpeg's WebM muxer lists no codec tags, so OpenCV says the fourcc it was given is "not
# supported" and writes the codec's own (empty) tag instead: the file is right, the notice is not.
_TAG_NOTICE = re.compile(
    rb"^OpenCV: FFMPEG: (tag 0x[0-9a-f]{8}/'.{4}' is not supported with codec id \d+ and format "
    rb"|fallback to use tag 0x[0-9a-f]{8}/)"
)


def probe_codec(suffix: str, folder: Path | None = None) -> tuple[str, str] | None:
    """The first browser-playable (fourcc, name) this OpenCV build can write for ``suffix``, or
    None; found by opening a small writer on a scratch file (in ``folder``), once a process."""
    if suffix not in _probed:
        found = None
        for fourcc, name in BROWSER_CODECS.get(suffix, ()):
            fd, scratch = tempfile.mkstemp(prefix=".annotate-probe-", suffix=suffix, dir=folder)
            os.close(fd)
            try:
                with native_stderr_silenced():
                    writer = cv2.VideoWriter(
                        scratch, cv2.VideoWriter.fourcc(*fourcc), 25.0, (64, 64)
                    )
                    opened = writer.isOpened()
                    writer.release()
            finally:
                with contextlib.suppress(OSError):
                    os.unlink(scratch)
            if opened:
                found = (fourcc, name)
                break
        _probed[suffix] = found
    return _probed[suffix]


def writable_formats(folder: Path | None = None) -> list[str]:
    """What this build can write, e.g. ['.webm (VP8)']."""
    return [
        f"{suffix} ({codec[1]})"
        for suffix in BROWSER_CODECS
        if (codec := probe_codec(suffix, folder)) is not None
    ]


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


def draw_label(canvas: Image, text: str, box: tuple[int, int, int, int], colour: Colour) -> None:
    """``text`` on a filled box of ``colour``: above the face box, or inside its top edge when
    there is no room above; kept inside the frame."""
    height, width = canvas.shape[:2]
    (text_w, text_h), baseline = cv2.getTextSize(text, _FONT, _FONT_SCALE, 1)
    label_w, label_h = text_w + 2 * _PAD, text_h + baseline + 2 * _PAD
    x1, y1 = box[0], box[1]
    left = max(0, min(x1, width - label_w))
    top = y1 - label_h if y1 - label_h >= 0 else y1
    top = max(0, min(top, height - label_h))
    cv2.rectangle(canvas, (left, top), (left + label_w - 1, top + label_h - 1), colour, cv2.FILLED)
    origin = (left + _PAD, top + _PAD + text_h)
    cv2.putText(canvas, text, origin, _FONT, _FONT_SCALE, TEXT, 1, cv2.LINE_AA)


def annotate(
    image: Image, faces: list[FaceView], unmatched: Literal["pixelate", "show"] = "pixelate"
) -> Image:
    """A copy of ``image`` with each face's box and label (unmatched faces pixelated unless
    ``show``)."""
    canvas = image.copy()
    height, width = canvas.shape[:2]
    for face in faces:
        x1, y1, x2, y2 = (round(v) for v in face.box)
        x1, y1 = max(0, x1), max(0, y1)
        x2, y2 = min(width, x2), min(height, y2)
        matched = face.label is not None
        if not matched and unmatched == "pixelate":
            pixelate(canvas, (x1, y1, x2, y2))
        colour = MATCHED if matched else UNMATCHED
        cv2.rectangle(canvas, (x1, y1), (x2, y2), colour, 2)
        text = f"#{face.track_id}" + (f" {face.label}" if matched else "")
        draw_label(canvas, text, (x1, y1, x2, y2), colour)
    return canvas


class Annotator:
    """Writes annotated frames to a video file (opened on the first frame, at its size) in a
    browser-playable format chosen by the file's suffix."""

    def __init__(
        self,
        path: Path,
        fps: float,
        unmatched: Literal["pixelate", "show"] = "pixelate",
        *,
        overwrite: bool = False,
    ) -> None:
        suffix = path.suffix.lower()
        if not path.parent.is_dir():
            raise EdgeError(f"--annotate {path}: folder {path.parent} does not exist")
        if path.is_dir():
            raise EdgeError(f"--annotate {path} is a folder: name a video file")
        if path.exists() and not overwrite:
            raise EdgeError(
                f"--annotate {path} already exists: choose a new path, or --force to overwrite it"
            )
        codec = probe_codec(suffix, path.parent)
        if codec is None:
            can = writable_formats(path.parent)
            wanted = "/".join(name for _, name in BROWSER_CODECS.get(suffix, ())) or None
            raise EdgeError(
                f"--annotate {path}: "
                + (
                    f"this OpenCV build cannot write {wanted} for {suffix}"
                    if wanted
                    else "write a browser-playable .webm or .mp4"
                )
                + "; it can write "
                + (", ".join(can) if can else "none of .webm (VP8/VP9) or .mp4 (H.264)")
            )
        self.path = path
        self.fps = fps
        self.unmatched = unmatched
        self.codec = codec[1]
        self.frames = 0
        self._fourcc = cv2.VideoWriter.fourcc(*codec[0])
        self._writer: cv2.VideoWriter | None = None
        self._size = (0, 0)

    def write(self, image: Image, faces: list[FaceView]) -> None:
        height, width = image.shape[:2]
        if self._writer is None:
            self._size = (width, height)
            with native_stderr_silenced(only=_TAG_NOTICE):
                self._writer = cv2.VideoWriter(str(self.path), self._fourcc, self.fps, self._size)
            if not self._writer.isOpened():
                self._writer = None
                raise EdgeError(f"cannot write video {self.path} ({self.codec})")
        canvas = annotate(image, faces, self.unmatched)
        if (width, height) != self._size:
            canvas = fit(canvas, self._size)  # a folder of stills of different sizes
        self._writer.write(canvas)
        self.frames += 1

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None
            log.info("wrote %d annotated frames to %s (%s)", self.frames, self.path, self.codec)
