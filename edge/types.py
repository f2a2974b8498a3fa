"""Values passed between stages and features. Frozen: a stage never edits what it was given."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]
BoolArray = npt.NDArray[np.bool_]
Image = npt.NDArray[np.uint8]
Box = tuple[float, float, float, float]  # x1, y1, x2, y2 in pixels

# BlazeFace keypoint order (subject's right eye appears on the image's left).
RIGHT_EYE, LEFT_EYE, NOSE_TIP, MOUTH_CENTER, RIGHT_EAR, LEFT_EAR = range(6)


@dataclass(frozen=True, eq=False)
class Detection:
    """A face found in a frame, in that frame's pixel coordinates."""

    box: Box
    score: float
    keypoints: FloatArray  # (6, 2) x, y in BlazeFace order

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]


@dataclass(frozen=True, eq=False)
class AlignedFace:
    """A 112x112 face crop and what the alignment learned about the face on the way."""

    image: Image  # BGR uint8 (112, 112, 3)
    eye_distance_px: float  # distance between the eye centres in the frame
    template_error: float  # RMS distance (in 112-px units) of the points from the template
    landmark_confidence: float = 1.0  # the landmark model's belief that this is a face it fits


@dataclass(frozen=True, eq=False)
class Face:
    """A detected face after the quality gate and, if it passed, the embedder."""

    detection: Detection
    quality: float
    embedding: FloatArray | None  # (192,) L2-normalised; None when below the quality floor

    @property
    def box(self) -> tuple[float, float, float, float]:
        return self.detection.box

    @property
    def score(self) -> float:
        return self.detection.score


@dataclass(frozen=True, eq=False)
class ContextFrame:
    """A small JPEG of the scene around a matched face, every other face already blurred in it
    (made by :mod:`edge.pipeline.context`, carried by an alert as its ``context``)."""

    jpeg: bytes
    width: int
    height: int
    box: tuple[int, int, int, int]  # the matched face in the JPEG's pixels: x1, y1, x2, y2


@dataclass(frozen=True)
class Match:
    """One watchlist entry as a candidate for a face, with its best template's score."""

    entry_id: int
    label: str
    score: float
    template_key: int
    reason: str | None = None
    case_ref: str | None = None

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "entry_id": self.entry_id,
            "label": self.label,
            "score": round(self.score, 4),
        }
        if self.reason is not None:
            out["reason"] = self.reason
        if self.case_ref is not None:
            out["case_ref"] = self.case_ref
        return out


@dataclass(frozen=True)
class Identification:
    """The best entries for one face and the decision at the list's threshold."""

    candidates: tuple[Match, ...]
    threshold: float

    @property
    def match(self) -> Match | None:
        """The best candidate if it reaches the threshold, else None."""
        if self.candidates and self.candidates[0].score >= self.threshold:
            return self.candidates[0]
        return None


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes (0 when they do not overlap)."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0
