"""The quality gate: is this face good enough to embed and match?

Four parts, each in [0, 1], multiplied so that any one of them can veto:
- size: the distance between the eyes in the frame. Below ``quality.min_eye_px`` (16 px by
  default) it is 0: such a face is tracked but never embedded or matched, because below 16 px
  the right person is the top candidate less than 90 % of the time (docs/recognition.md, "Small
  and distant faces"). From the limit, where identification is already nearly as good as at
  full size, it is 0.5, rising to 1 at 1.25 times the limit, so that of a track's shots the
  larger ones are preferred.
- sharpness: variance of the Laplacian of the aligned grey face, against what a sharp face of
  that size gives: a face with fewer than 32 px between the eyes is upscaled into the 112 px
  crop, which lowers the variance by itself (about as the eye distance to the power 1.25,
  measured on pasted LFW faces), so only blur beyond that lowers this part.
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

EYES_FULL_PX = 32.0  # eye distance at which the aligned 112 px crop is no longer upscaled
SHARPNESS_FULL = 100.0  # Laplacian variance of a crisp aligned face; LFW's median is above it
SHARPNESS_SIZE_EXPONENT = 1.25  # a sharp face's variance falls with the upscale about like this
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


def assess(face: AlignedFace, min_eye_px: float) -> Quality:
    """The parts of the face's quality; ``min_eye_px`` is ``quality.min_eye_px``."""
    eyes = face.eye_distance_px
    grey = cv2.cvtColor(face.image, cv2.COLOR_BGR2GRAY)
    laplacian_var = float(cv2.Laplacian(grey, cv2.CV_32F).var())
    expected = SHARPNESS_FULL * min(1.0, eyes / EYES_FULL_PX) ** SHARPNESS_SIZE_EXPONENT
    return Quality(
        size=0.0 if eyes < min_eye_px else 0.5 + 0.5 * _ramp(eyes, min_eye_px, 1.25 * min_eye_px),
        sharpness=min(1.0, laplacian_var / max(expected, 1e-6)),
        pose=1.0 - _ramp(face.template_error, POSE_ERROR_FULL, POSE_ERROR_USELESS),
        landmarks=face.landmark_confidence,
    )
