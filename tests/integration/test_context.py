"""The context frame on real faces with the real models: the matched face stays where the box
says and recognisable, every other face is blurred beyond recognition on the device.

Scenes of two real faces (LFW sample photos) in a real audience (tests/context_helpers.py), at
1920x1080 (the other face is small: only the tiles find it) and at 640x360. The context is made
with no help from the tracker, so the maker's own scan has to find the other face.
"""

from __future__ import annotations

from functools import cache

import cv2
import numpy as np
import pytest
from context_helpers import (
    TwoFaces,
    decode_jpeg,
    embed_at,
    photo_embedding,
    scaled,
    two_face_scene,
)
from recognition_helpers import analyzer

from edge.cli.alerts import DEMO_CONTEXT_BOX, DEMO_CONTEXT_FRAME, demo_context_frame
from edge.demo import DEMO_CLIP
from edge.pipeline.context import Background, ContextMaker, encode_context
from edge.samples import OTHER_PERSON
from edge.types import ContextFrame, Image, iou

SCENES = {"1920x1080": ((1920, 1080), 180.0, 60.0), "640x360": ((640, 360), 80.0, 50.0)}
UNRECOGNISABLE = 0.3  # issue 17: the blurred face's embedding against the original's is below


@cache
def _scene(name: str) -> TwoFaces:
    size, listed_px, other_px = SCENES[name]
    return two_face_scene(analyzer(), size, listed_px, other_px)


@cache
def _context(name: str, background: Background = "sharp") -> ContextFrame:
    scene = _scene(name)
    context = ContextMaker(analyzer(), 640, background).make(scene.image, scene.listed.box)
    assert context is not None
    return context


def _image(context: ContextFrame) -> Image:
    image = decode_jpeg(context.jpeg)
    assert image is not None and image.shape[:2] == (context.height, context.width)
    return image


BACKGROUNDS: tuple[Background, ...] = ("blurred", "sharp")


@pytest.mark.parametrize("background", BACKGROUNDS)
@pytest.mark.parametrize("name", SCENES)
def test_the_matched_face_is_at_the_box_and_still_recognisable(
    name: str, background: Background
) -> None:
    scene, context = _scene(name), _context(name, background)
    assert context.width == 640 and len(context.jpeg) < 128 * 1024
    image = _image(context)
    found = analyzer().detect(image)
    at_box = max(found, key=lambda d: iou(d.box, context.box))
    assert iou(at_box.box, context.box) > 0.8
    before = embed_at(analyzer(), scene.image, scene.listed)
    similarity = float(embed_at(analyzer(), image, at_box) @ before)
    print(f"{name}: matched face, context vs scene {similarity:.3f}")
    assert similarity > 0.9


@pytest.mark.parametrize("background", BACKGROUNDS)
@pytest.mark.parametrize("name", SCENES)
def test_the_other_face_is_unrecognisable_and_no_longer_a_face(
    name: str, background: Background
) -> None:
    scene, context = _scene(name), _context(name, background)
    image = _image(context)
    factor = context.width / scene.image.shape[1]
    where = scaled(scene.other, factor)  # an attacker who knows exactly where the face was
    original = embed_at(analyzer(), scene.image, scene.other)
    photo = photo_embedding(analyzer(), OTHER_PERSON)
    # Scaling alone would leave him recognisable: the blur is what removes him.
    plain = np.asarray(
        cv2.resize(scene.image, (context.width, context.height), interpolation=cv2.INTER_AREA),
        dtype=np.uint8,
    )
    unblurred = float(embed_at(analyzer(), plain, where) @ original)
    blurred = float(embed_at(analyzer(), image, where) @ original)
    against_photo = float(embed_at(analyzer(), image, where) @ photo)
    print(
        f"{name}, background {background}: other face vs the original, unblurred "
        f"{unblurred:.3f}, blurred {blurred:.3f} (vs his photo {against_photo:.3f})"
    )
    assert unblurred > 0.6
    assert blurred < UNRECOGNISABLE and against_photo < UNRECOGNISABLE
    x1, y1, x2, y2 = where.box
    for found in analyzer().detect(image):
        cx, cy = (found.box[0] + found.box[2]) / 2, (found.box[1] + found.box[3]) / 2
        assert not (x1 <= cx <= x2 and y1 <= cy <= y2), f"a face is still found at {where.box}"


@pytest.mark.parametrize("name", SCENES)
def test_a_face_no_pass_found_is_still_unrecognisable_with_the_background_blurred(
    name: str,
) -> None:
    """A profile or a turned head may escape every detector pass: with nothing found to
    pixelate, the default background blur alone must still remove the other person."""
    scene = _scene(name)
    original = embed_at(analyzer(), scene.image, scene.other)
    similarity = {}
    for background in BACKGROUNDS:
        context = encode_context(scene.image, scene.listed.box, (), 640, background)
        assert context is not None
        where = scaled(scene.other, context.width / scene.image.shape[1])
        similarity[background] = float(embed_at(analyzer(), _image(context), where) @ original)
    print(f"{name}: a face nobody found, vs the original: {similarity}")
    assert similarity["blurred"] < UNRECOGNISABLE
    assert similarity["sharp"] > 0.5  # what the blur saves: unblurred he is still recognisable


def test_the_scan_finds_what_the_tile_rotation_may_not_have_looked_at() -> None:
    # At 1080p the other face is too small for the whole-frame pass: only tiles find it.
    scene = _scene("1920x1080")
    whole_frame_only = analyzer().detector.detect(scene.image)
    assert all(iou(d.box, scene.other.box) < 0.3 for d in whole_frame_only)
    faces = ContextMaker(analyzer(), 640, "blurred").faces(scene.image)
    assert any(iou(box, scene.other.box) > 0.5 for box in faces)


def test_test_alerts_carry_a_frame_of_the_demo_clip_with_one_face_at_its_box() -> None:
    capture = cv2.VideoCapture(str(DEMO_CLIP))
    for _ in range(DEMO_CONTEXT_FRAME + 1):
        ok, frame = capture.read()
        assert ok
    capture.release()
    found = analyzer().detect(np.asarray(frame, dtype=np.uint8))
    assert len(found) == 1 and iou(found[0].box, DEMO_CONTEXT_BOX) > 0.95
    context = demo_context_frame(320, "blurred")
    assert context is not None and (context.width, context.height) == (320, 180)
    assert context.box == (95, 26, 139, 71)
    image = _image(context)
    assert iou(analyzer().detect(image)[0].box, context.box) > 0.8
