"""A synthetic clip of people walking towards a fixed camera, for measuring ``edge run``.

``edge bench far --write-clip OUT.mp4`` writes it: one real scene (a background made as
:mod:`edge.bench.scenes` makes them) seen by a fixed camera at 1920x1080 and 25 fps, and LFW
faces (pasted whole, as in the benchmark) walking in from far away. Each walker's face grows from
``start_px`` to ``end_px`` while it crosses part of the frame, and walkers enter one after the
other, so most frames hold faces too small for the whole-frame pass. No 1080p footage ships with
the project; this clip is how the 1080p frame rate in docs/recognition.md is reproduced.

Every other walker is a person LFW has several photos of; ``--enroll-photos DIR`` writes their
other photos (never the one in the clip) as ``DIR/<Name>/``, the folder ``edge watchlist build
--photos`` enrolls, so that a list made from it should alert on each of them and on nobody else.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edge.bench import scenes
from edge.errors import EdgeError
from edge.types import Image


@dataclass(frozen=True)
class Walker:
    face: scenes.SourceFace
    photo: Image
    enter: int  # first frame
    frames: int  # frames on screen
    start: tuple[float, float]  # face centre when it enters (frame px)
    end: tuple[float, float]  # ... and when it leaves
    start_px: float
    end_px: float

    def at(self, index: int) -> tuple[float, float, float] | None:
        """Face centre and width in frame ``index``, or None when off screen."""
        k = index - self.enter
        if not 0 <= k < self.frames:
            return None
        share = k / max(1, self.frames - 1)
        # Apparent size grows as 1/distance: geometric, slow at first, then fast.
        width = self.start_px * (self.end_px / self.start_px) ** share
        x = self.start[0] + (self.end[0] - self.start[0]) * share
        y = self.start[1] + (self.end[1] - self.start[1]) * share
        return x, y, width


def plan_walkers(
    faces: Sequence[tuple[scenes.SourceFace, Image]],
    frame: tuple[int, int],
    total: int,
    rng: np.random.Generator,
    start_px: float = 28.0,
    end_px: float = 160.0,
) -> list[Walker]:
    """Walkers entering one after the other (about three on screen at once), each crossing a
    random part of the frame while it comes closer."""
    width, height = frame
    walkers = []
    stay = max(2, int(total * 0.4))
    for i, (face, photo) in enumerate(faces):
        enter = int(i * (total - stay) / max(1, len(faces) - 1)) if len(faces) > 1 else 0
        start = (float(rng.uniform(0.15, 0.85) * width), float(rng.uniform(0.2, 0.4) * height))
        end = (
            float(np.clip(start[0] + rng.uniform(-0.25, 0.25) * width, 0.1 * width, 0.9 * width)),
            float(rng.uniform(0.45, 0.7) * height),
        )
        walkers.append(Walker(face, photo, enter, stay, start, end, start_px, end_px))
    return walkers


def render(background: Image, walkers: Sequence[Walker], index: int) -> Image:
    canvas = background.astype(np.float32)
    height, width = background.shape[:2]
    # Far walkers first, so that a nearer one passes in front.
    visible = [(w, spot) for w in walkers if (spot := w.at(index)) is not None]
    for walker, (cx, cy, face_px) in sorted(visible, key=lambda item: item[1][2]):
        pw, ph = scenes.pasted_size(walker.face, walker.photo.shape[:2], face_px)
        scale = face_px / walker.face.width
        fx = (walker.face.box[0] + walker.face.box[2]) / 2 * scale
        fy = (walker.face.box[1] + walker.face.box[3]) / 2 * scale
        x = round(min(max(cx - fx, 0), width - pw))
        y = round(min(max(cy - fy, 0), height - ph))
        if pw <= width and ph <= height:
            scenes.paste(canvas, scenes.Paste(walker.face, walker.photo, face_px), x, y)
    image = np.clip(canvas, 0, 255).astype(np.uint8)
    return np.asarray(cv2.GaussianBlur(image, (0, 0), scenes.BLUR_SIGMA), dtype=np.uint8)


def write_clip(
    path: Path,
    background: Image,
    faces: Sequence[tuple[scenes.SourceFace, Image]],
    *,
    seconds: float,
    fps: float,
    seed: int,
    progress: Callable[[Sequence[Any], str], Iterable[Any]] | None = None,
) -> dict[str, Any]:
    """Write the clip (MPEG-4 Part 2 in MP4, which every OpenCV build can write and read)."""
    height, width = background.shape[:2]
    total = max(2, math.ceil(seconds * fps))
    walkers = plan_walkers(faces, (width, height), total, np.random.default_rng([seed, 7]))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), fps, (width, height))
    if not writer.isOpened():
        raise EdgeError(f"cannot write a video to {path}")
    indices: Iterable[Any] = range(total)
    if progress is not None:
        indices = progress(list(range(total)), "clip")
    try:
        for index in indices:
            writer.write(render(background, walkers, index))
    finally:
        writer.release()
    return {
        "clip": str(path),
        "frame": f"{width}x{height}",
        "fps": fps,
        "frames": total,
        "walkers": [label(w.face.name) for w in walkers],
        "photos": [w.face.path.name for w in walkers],  # the one photo of each in the clip
        "face_px": [walkers[0].start_px, walkers[0].end_px] if walkers else [],
    }


def label(name: str) -> str:
    """The person's name as a list shows it: 'George_W_Bush' -> 'George W Bush'."""
    return name.replace("_", " ")


def write_enrollment(folder: Path, people: Mapping[str, Sequence[Path]]) -> None:
    """``folder/<label>/``: copies of each person's ``people`` photos (not the clip's)."""
    try:
        folder.mkdir(parents=True)
        for name, photos in people.items():
            person = folder / label(name)
            person.mkdir()
            for photo in photos:
                shutil.copyfile(photo, person / photo.name)
    except OSError as exc:
        raise EdgeError(f"cannot write {folder}: {exc.strerror or exc}") from exc
