"""The context frame without models: scaling, blurring the given boxes, the matched face's box,
and what an alert carries of it (schema, caps, ``alerts.include_context``)."""

from __future__ import annotations

import base64
import json
import sqlite3
from pathlib import Path

import cv2
import numpy as np
import pytest
from alerts_helpers import SampleHit, sample_alert

from edge.alerts.model import WatchlistRef
from edge.alerts.service import AlertService
from edge.audit import read_records
from edge.config import config_from_dict
from edge.pipeline.context import BLUR_MARGIN, encode_context, is_same_face
from edge.samples import OTHER_PERSON, SAME_PERSON
from edge.types import Box, ContextFrame, Image

# Both sample photos side by side (each 250x250, the face in the middle), scaled up 4x: a
# 2000x1000 "scene" whose context frame is 640x320 (scale 0.32).
FACE_IN_PHOTO: Box = (75.0, 75.0, 175.0, 185.0)
SCALE_UP = 4


def _scaled(box: Box, factor: float) -> Box:
    return (box[0] * factor, box[1] * factor, box[2] * factor, box[3] * factor)


def _scene() -> tuple[Image, Box, Box]:
    photos = [cv2.imread(str(p)) for p in (SAME_PERSON[0], OTHER_PERSON)]
    scene = cv2.resize(np.hstack(photos), None, fx=SCALE_UP, fy=SCALE_UP)
    left = _scaled(FACE_IN_PHOTO, SCALE_UP)
    right = (left[0] + 250 * SCALE_UP, left[1], left[2] + 250 * SCALE_UP, left[3])
    return np.asarray(scene, dtype=np.uint8), left, right


def _made(context: ContextFrame | None) -> ContextFrame:
    assert context is not None
    return context


def _decoded(context: ContextFrame) -> Image:
    image = cv2.imdecode(np.frombuffer(context.jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None and image.shape[:2] == (context.height, context.width)
    return np.asarray(image, dtype=np.uint8)


def _patch(image: Image, box: tuple[float, ...]) -> Image:
    x1, y1, x2, y2 = (round(v) for v in box)
    return image[y1:y2, x1:x2].astype(np.int16)


def _detail(patch: Image) -> float:
    """Mean gradient magnitude: the edges (eyes, mouth, outline) a patch holds."""
    grey = cv2.cvtColor(patch.astype(np.uint8), cv2.COLOR_BGR2GRAY).astype(np.float32)
    dx, dy = cv2.Sobel(grey, cv2.CV_32F, 1, 0), cv2.Sobel(grey, cv2.CV_32F, 0, 1)
    return float(np.hypot(dx, dy).mean())


def test_the_context_is_scaled_down_and_every_other_box_is_pixelated() -> None:
    scene, matched, other = _scene()
    before = scene.copy()
    context = encode_context(scene, matched, [other], 640)
    assert context is not None
    assert np.array_equal(scene, before)  # the frame itself is left as it was
    assert (context.width, context.height) == (640, 320)
    scale = 640 / scene.shape[1]
    assert context.box == tuple(
        f(v * scale) for f, v in zip((np.floor, np.floor, np.ceil, np.ceil), matched, strict=True)
    )
    image = _decoded(context)
    plain = cv2.resize(scene, (640, 320), interpolation=cv2.INTER_AREA)
    mine = tuple(v * scale for v in matched)
    theirs = tuple(v * scale for v in other)
    # The matched face is as it was (up to the JPEG); the other one has lost its features,
    # and so has the margin around it (hair, outline).
    assert np.abs(_patch(image, mine) - _patch(plain, mine)).mean() < 4
    assert _detail(_patch(image, theirs)) < 0.25 * _detail(_patch(plain, theirs))
    w = (theirs[2] - theirs[0]) * BLUR_MARGIN * 0.9
    above = (theirs[0], theirs[1] - w, theirs[2], theirs[1])
    assert _detail(_patch(image, above)) < 0.25 * _detail(_patch(plain, above))


def test_a_small_frame_is_not_enlarged_and_a_box_on_the_matched_face_is_not_blurred() -> None:
    scene, matched, other = _scene()
    small = np.asarray(cv2.resize(scene, (500, 250), interpolation=cv2.INTER_AREA), np.uint8)
    mine = _scaled(matched, 1 / SCALE_UP)
    # The track's predicted box and the scan's box of the matched face itself.
    same: list[Box] = [
        (mine[0] + 6, mine[1] + 4, mine[2] + 6, mine[3] + 4),
        (mine[0] - 10, mine[1] - 10, mine[2] + 10, mine[3] + 14),
        (mine[0] + 20, mine[1] + 20, mine[0] + 60, mine[1] + 60),  # a seam's sliver of it
    ]
    assert all(is_same_face(box, mine) for box in same)
    assert not is_same_face(_scaled(other, 1 / SCALE_UP), mine)
    context = encode_context(small, mine, same, 640)
    assert context is not None and (context.width, context.height) == (500, 250)
    image = _decoded(context)
    assert np.abs(_patch(image, mine) - _patch(small, mine)).mean() < 4


def test_a_neighbour_s_margin_stops_at_the_matched_face_but_its_own_box_does_not() -> None:
    scene, matched, _ = _scene()
    x1, y1, x2, y2 = matched
    w = x2 - x1
    beside: Box = (x2 + 0.1 * w, y1, x2 + 1.1 * w, y2)  # its margin reaches into the matched box
    overlapping: Box = (x2 - 0.3 * w, y1, x2 + 0.7 * w, y2)  # its own box does
    scale = 640 / scene.shape[1]
    plain = cv2.resize(scene, (640, 320), interpolation=cv2.INTER_AREA)
    mine = tuple(v * scale for v in matched)
    kept = _decoded(_made(encode_context(scene, matched, [beside], 640)))
    assert np.abs(_patch(kept, mine) - _patch(plain, mine)).mean() < 4
    cut = _decoded(_made(encode_context(scene, matched, [overlapping], 640)))
    strip = (overlapping[0] * scale, mine[1], mine[2], mine[3])
    assert _detail(_patch(cut, strip)) < 0.35 * _detail(_patch(plain, strip))


def test_the_background_is_blurred_but_the_matched_person_is_kept() -> None:
    scene, matched, _ = _scene()
    scale = 640 / scene.shape[1]
    plain = cv2.resize(scene, (640, 320), interpolation=cv2.INTER_AREA)
    mine = tuple(v * scale for v in matched)
    w, h = mine[2] - mine[0], mine[3] - mine[1]
    shoulders = (mine[0], mine[3], mine[2], mine[3] + h)
    far_corner = (0.0, 0.0, w, h) if mine[0] > 2 * w else (640 - w, 320 - h, 640.0, 320.0)
    blurred = _decoded(_made(encode_context(scene, matched, [], 640, "blurred")))
    sharp = _decoded(_made(encode_context(scene, matched, [], 640, "sharp")))
    for image in (blurred, sharp):
        assert np.abs(_patch(image, mine) - _patch(plain, mine)).mean() < 4
        assert np.abs(_patch(image, shoulders) - _patch(plain, shoulders)).mean() < 4
    assert _detail(_patch(blurred, far_corner)) < 0.5 * _detail(_patch(plain, far_corner))
    assert np.abs(_patch(sharp, far_corner) - _patch(plain, far_corner)).mean() < 4


def _context() -> ContextFrame:
    scene, matched, other = _scene()
    return _made(encode_context(scene, matched, [other], 640))


def test_an_alert_carries_the_context_frame_as_the_schema_says() -> None:
    context = _context()
    alert = sample_alert(context=context).document()
    carried = alert["context"]
    assert isinstance(carried, dict)
    assert carried["media_type"] == "image/jpeg"
    assert base64.b64decode(carried["data"]) == context.jpeg
    assert (carried["width"], carried["height"]) == (context.width, context.height)
    assert carried["box"] == list(context.box)
    assert "context" not in sample_alert(context=context).summary()  # no pictures in the audit


def test_an_oversized_context_frame_is_left_out_and_the_alert_is_still_made() -> None:
    context = _context()
    alert = sample_alert(context=context, context_max_bytes=len(context.jpeg) - 1)
    assert alert.context is None and "context" not in alert.document()


def test_a_context_frame_that_is_not_a_jpeg_is_refused() -> None:
    from edge.errors import AlertError

    with pytest.raises(AlertError, match="context frame is not a JPEG"):
        sample_alert(context=ContextFrame(b"\x89PNG\r\n\x1a\n", 10, 10, (0, 0, 5, 5)))


def _stored(tmp_path: Path, alerts: dict[str, object], context: ContextFrame) -> dict[str, object]:
    config = config_from_dict({"device": {"id": "cam-1"}, "alerts": alerts})
    service = AlertService(config, state_dir=tmp_path)
    try:
        hit = SampleHit(1, "e1", "Person 1", 0.7, 0.5, 0.9, context=context)
        alert_id = service.hit(
            hit, watchlist=WatchlistRef(id="wl", version="1"), model_id="m"
        ).alert_id
    finally:
        service.stop(0.1)
    with sqlite3.connect(tmp_path / "outbox.db") as db:
        rows = db.execute("SELECT alert_id, payload FROM outbox").fetchall()
    assert [row[0] for row in rows] == [alert_id]  # committed, whatever became of the picture
    stored: dict[str, object] = json.loads(rows[0][1])
    for record in read_records(tmp_path / "audit.jsonl"):
        assert b"/9j/" not in json.dumps(record).encode()
    return stored


@pytest.mark.parametrize(
    ("alerts", "kept"),
    [
        ({}, True),
        ({"include_context": False}, False),
        ({"context_max_bytes": 16 * 1024}, False),  # the sample scene's JPEG is larger
    ],
    ids=["default", "include_context-false", "over-context_max_bytes"],
)
def test_the_service_sends_the_context_frame_as_configured(
    tmp_path: Path, alerts: dict[str, object], kept: bool
) -> None:
    context = _context()
    assert len(context.jpeg) > 16 * 1024
    stored = _stored(tmp_path, alerts, context)
    assert ("context" in stored) is kept
