"""Which face of a photo is the person's, when it shows more than one (enrolment, benchmarks).

``edge watchlist build --pick``:

- ``largest`` (the default): the widest face, when it is clearly the largest: at least
  :data:`CLEARLY_LARGEST` (1.5) times as wide as the next widest. Otherwise none is picked: a
  photo of two people of about the same size does not say which one is meant.
- ``centre``: the face whose box centre is nearest the photo's centre.
- ``only``: exactly one face, or none is picked.

A photo with one face is that face in every mode.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Protocol, TypeVar, get_args

import numpy as np

from edge.types import Image

PickMode = Literal["largest", "centre", "only"]
PICK_MODES: tuple[str, ...] = get_args(PickMode)
CLEARLY_LARGEST = 1.5  # the widest face must be at least this many times as wide as the next


class HasBox(Protocol):
    @property
    def box(self) -> tuple[float, float, float, float]: ...


Boxed = TypeVar("Boxed", bound=HasBox)


def nearest_to_centre(faces: Sequence[Boxed], image: Image) -> Boxed:
    """The face whose box centre is nearest the image centre (LFW's labelled person)."""
    height, width = image.shape[:2]
    centre = np.array([width / 2, height / 2])
    return min(
        faces, key=lambda f: float(np.linalg.norm(np.reshape(f.box, (2, 2)).mean(axis=0) - centre))
    )


def _width(face: HasBox) -> float:
    x1, _, x2, _ = face.box
    return max(0.0, x2 - x1)


def pick_face(
    faces: Sequence[Boxed], image: Image, mode: PickMode = "largest"
) -> tuple[Boxed | None, str | None]:
    """``(face, note)``: the picked face and, when there were several, why that one; or
    ``(None, reason)`` when none is picked."""
    if not faces:
        return None, "no face found"
    if len(faces) == 1:
        return faces[0], None
    count = len(faces)
    if mode == "only":
        return None, f"{count} faces found, exactly one is needed (--pick only)"
    if mode == "centre":
        return nearest_to_centre(faces, image), f"nearest the centre of {count} faces"
    first, second = sorted(faces, key=_width, reverse=True)[:2]
    ratio = _width(first) / max(_width(second), 1e-6)
    sizes = f"widest {_width(first):.0f} px, next {_width(second):.0f} px: {ratio:.2f}x"
    if ratio < CLEARLY_LARGEST:
        return None, (
            f"{count} faces found, none clearly the largest ({sizes}, needs "
            f"{CLEARLY_LARGEST}x): crop the photo or use --pick centre"
        )
    return first, f"largest of {count} faces ({sizes})"
