"""The quality gate: is this face good enough to embed and match?

Four parts, each in [0, 1], multiplied so that any one of them can veto:
- size: the distance between the eyes in the frame; 32 px or more counts as full resolution
  (the aligned template itself has 35 px), 6 px or fewer as useless.
- sharpness: variance of the Laplacian of the aligned grey face; motion blur and upscaled tiny
  faces score low.
- pose: how far the five points stay from the template after the best similarity transform. A
  similarity cannot undo yaw or pitch, so a turned or nodding head leaves a large residual.
- landmarks: the face mesh's own face-presence probability (1 without the mesh). The mesh fits
  a full profile with a frontal-looking set of points, so pose alone rates a profile well; the
  presence output does not: 1.00 on 99% of LFW faces, under 0.01 on the profile close-up in the
  Hamilton clip.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from edge.types import AlignedFace

EYES_USELESS_PX, EYES_FULL_PX = 6.0, 32.0
SHARPNESS_FULL = 100.0  # Laplacian variance of a crisp aligned face; LFW's median is above it
POSE_ERROR_FULL, POSE_ERROR_USELESS = 3.0, 12.0  # template RMS error, 112-px units


def _ramp(value: float, low: float, high: float) -> float:
    return float(np.clip((value - low) / (high - low), 0.0, 1.0))


@dataclass(frozen=True)
class Quality:
    size: float
    sharpness: float
    pose: float
    landmarks: float

    @property
    def score(self) -> float:
        return self.size * self.sharpness * self.pose * self.landmarks


def assess(face: AlignedFace) -> Quality:
    grey = cv2.cvtColor(face.image, cv2.COLOR_BGR2GRAY)
    laplacian_var = float(cv2.Laplacian(grey, cv2.CV_32F).var())
    return Quality(
        size=_ramp(face.eye_distance_px, EYES_USELESS_PX, EYES_FULL_PX),
        sharpness=min(1.0, laplacian_var / SHARPNESS_FULL),
        pose=1.0 - _ramp(face.template_error, POSE_ERROR_FULL, POSE_ERROR_USELESS),
        landmarks=face.landmark_confidence,
    )
