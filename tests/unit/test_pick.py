"""Which face of a photo with several is the person's (`edge watchlist build --pick`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from edge.pipeline.pick import CLEARLY_LARGEST, nearest_to_centre, pick_face

PHOTO = np.zeros((200, 400, 3), np.uint8)  # 400 wide, 200 high: centre (200, 100)


@dataclass(frozen=True)
class Box:
    box: tuple[float, float, float, float]


def face(x: float, width: float, y: float = 50) -> Box:
    return Box((x, y, x + width, y + width))


def test_one_face_is_that_face_in_every_mode() -> None:
    only = face(10, 40)
    for mode in ("largest", "centre", "only"):
        assert pick_face([only], PHOTO, mode) == (only, None)
        assert pick_face([], PHOTO, mode) == (None, "no face found")


@pytest.mark.parametrize(
    ("ratio", "picked"),
    [(CLEARLY_LARGEST, True), (2.0, True), (CLEARLY_LARGEST - 0.01, False), (1.0, False)],
)
def test_largest_needs_a_clear_margin(ratio: float, picked: bool) -> None:
    small, large = face(300, 40), face(0, 40 * ratio)
    chosen, note = pick_face([small, large], PHOTO, "largest")
    assert note is not None
    if picked:
        assert chosen is large and note.startswith("largest of 2 faces (widest")
    else:
        assert chosen is None
        assert note.startswith("2 faces found, none clearly the largest")
        assert f"needs {CLEARLY_LARGEST}x" in note and "--pick centre" in note


def test_centre_picks_the_face_nearest_the_middle_whatever_its_size() -> None:
    big_at_edge, small_in_middle = face(0, 120), face(190, 20, y=90)
    chosen, note = pick_face([big_at_edge, small_in_middle], PHOTO, "centre")
    assert chosen is small_in_middle and note == "nearest the centre of 2 faces"
    assert nearest_to_centre([big_at_edge, small_in_middle], PHOTO) is small_in_middle


def test_only_refuses_a_second_face() -> None:
    chosen, note = pick_face([face(0, 120), face(300, 20)], PHOTO, "only")
    assert chosen is None and note == "2 faces found, exactly one is needed (--pick only)"
