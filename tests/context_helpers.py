"""A scene with two real faces for the context-frame tests, and the checks made on what leaves.

The scene: a frame of the demo clip's audience (real people, on no list) as the background,
scaled to the frame size, with two LFW sample photos pasted in: Colin Powell (the listed one:
a list enrolls Colin_Powell_0002, the scene shows Colin_Powell_0001) and Tony Blair (on no
list). Blair is small, so at 1080p only the tiles find him.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edge.demo import DEMO_CLIP
from edge.pipeline.analyzer import FaceAnalyzer
from edge.samples import OTHER_PERSON, SAME_PERSON
from edge.types import Box, Detection, FloatArray, Image, iou

BACKGROUND_FRAME = 220  # the demo clip's audience
PHOTO_MARGIN = 0.5  # of the face's size, kept around it from the photo (hair, shoulders)
# The threshold a calibrated list of these faces uses (the demo list's is 0.4517): a face at or
# above it would be named as that person.
MATCHES = 0.45


@dataclass(frozen=True)
class TwoFaces:
    image: Image
    listed: Detection  # Colin Powell, as the detector sees him in the scene
    other: Detection  # Tony Blair


def embed_at(analyzer: FaceAnalyzer, image: Image, detection: Detection) -> FloatArray:
    return analyzer.embed(analyzer.align(image, [detection]))[0]


def photo_embedding(analyzer: FaceAnalyzer, path: Path) -> FloatArray:
    image = np.asarray(cv2.imread(str(path)), dtype=np.uint8)
    return embed_at(analyzer, image, analyzer.detect(image)[0])


def _background(size: tuple[int, int]) -> Image:
    capture = cv2.VideoCapture(str(DEMO_CLIP))
    for _ in range(BACKGROUND_FRAME + 1):
        ok, frame = capture.read()
        assert ok, f"cannot read frame {BACKGROUND_FRAME} of {DEMO_CLIP}"
    capture.release()
    return np.asarray(cv2.resize(frame, size, interpolation=cv2.INTER_CUBIC), dtype=np.uint8)


def _paste(
    analyzer: FaceAnalyzer, canvas: Image, photo: Path, face_px: float, at: tuple[int, int]
) -> Box:
    """The photo's face (with PHOTO_MARGIN around it) scaled to ``face_px`` wide at ``at``;
    returns where the face's box went."""
    image = np.asarray(cv2.imread(str(photo)), dtype=np.uint8)
    x1, y1, x2, y2 = analyzer.detect(image)[0].box
    w, h = x2 - x1, y2 - y1
    left, top = max(0, int(x1 - PHOTO_MARGIN * w)), max(0, int(y1 - PHOTO_MARGIN * h))
    patch = image[top : int(y2 + PHOTO_MARGIN * h), left : int(x2 + PHOTO_MARGIN * w)]
    scale = face_px / w
    method = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    patch = cv2.resize(patch, None, fx=scale, fy=scale, interpolation=method)
    x, y = at
    ph, pw = patch.shape[:2]
    canvas[y : y + ph, x : x + pw] = patch
    return (
        x + (x1 - left) * scale,
        y + (y1 - top) * scale,
        x + (x2 - left) * scale,
        y + (y2 - top) * scale,
    )


def two_face_scene(
    analyzer: FaceAnalyzer, size: tuple[int, int], listed_px: float, other_px: float
) -> TwoFaces:
    width, height = size
    canvas = _background(size)
    listed = _paste(analyzer, canvas, SAME_PERSON[0], listed_px, (width // 20, height // 12))
    other = _paste(analyzer, canvas, OTHER_PERSON, other_px, (int(width * 0.62), height // 20))
    found = analyzer.detect(canvas)  # a still: the whole frame and every tile

    def at(box: Box) -> Detection:
        best = max(found, key=lambda d: iou(d.box, box))
        assert iou(best.box, box) > 0.5, f"no face detected at {box} in the scene"
        return best

    return TwoFaces(canvas, at(listed), at(other))


def scaled(detection: Detection, factor: float) -> Detection:
    x1, y1, x2, y2 = detection.box
    box = (x1 * factor, y1 * factor, x2 * factor, y2 * factor)
    return Detection(box, detection.score, detection.keypoints * factor)


def decode_jpeg(data: bytes) -> Image | None:
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    return None if image is None else np.asarray(image, dtype=np.uint8)


def jpegs_in(data: bytes) -> list[Image]:
    """Every image that decodes from a JPEG in ``data``: raw (from each FF D8 FF to an FF D9)
    or base64 (each run starting '/9j/'), whole or cut short (a fragment of a database page)."""
    images: list[Image] = []
    for run in re.finditer(rb"/9j/[A-Za-z0-9+/]+={0,2}", data):
        text = run.group()
        try:
            raw = base64.b64decode(text[: len(text) - len(text) % 4])
        except binascii.Error:
            continue
        image = decode_jpeg(raw)
        if image is not None:
            images.append(image)
    for start in (m.start() for m in re.finditer(rb"\xff\xd8\xff", data)):
        end = data.find(b"\xff\xd9", start)
        image = decode_jpeg(data[start : end + 2 if end != -1 else len(data)])
        if image is not None:
            images.append(image)
    return images


LOOK_AT_PX = 1920  # a picture is searched enlarged to this width: small faces in it too


def faces_in(analyzer: FaceAnalyzer, image: Image) -> list[FloatArray]:
    """The embedding of every face the detector finds in ``image`` enlarged to LOOK_AT_PX wide
    (a still: the whole image and its tiles), also at a low confidence."""
    factor = max(1.0, LOOK_AT_PX / image.shape[1])
    large = np.asarray(
        cv2.resize(image, None, fx=factor, fy=factor, interpolation=cv2.INTER_CUBIC), np.uint8
    )
    found = analyzer.detect(large) + analyzer.detector.detect(large, score_threshold=0.25)
    return [embed_at(analyzer, large, detection) for detection in found]
