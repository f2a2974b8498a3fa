"""The synthetic far-face scenes of ``edge bench far`` (edge/bench/scenes.py, backgrounds.py,
groundtruth.py), on small frames."""

from __future__ import annotations

import itertools
from functools import cache

import cv2
import numpy as np
import pytest

from edge.bench import groundtruth, scenes
from edge.bench.backgrounds import Background, BackgroundMaker, read_clip
from edge.bench.scenes import Paste, PlacedFace, Scene, SourceFace
from edge.demo import DEMO_CLIP
from edge.samples import OTHER_PERSON, SAME_PERSON
from edge.types import Box, Image

SIZE = (480, 320)
PHOTOS = (*SAME_PERSON, OTHER_PERSON)
# A face box inside the 250x250 sample photos (about where LFW's deep-funnelled faces sit).
FACE_BOX = (75.0, 70.0, 175.0, 190.0)


@cache
def clip_frames() -> tuple[Image, ...]:
    return tuple(read_clip(DEMO_CLIP, step=40))


@cache
def photo(index: int) -> Image:
    image = cv2.imread(str(PHOTOS[index]))
    assert image is not None
    return np.asarray(image, dtype=np.uint8)


def maker(extras: tuple[Image, ...] = ()) -> BackgroundMaker:
    return BackgroundMaker(SIZE, clip_frames(), PHOTOS, extras)


def pastes(width: float, count: int = 3) -> list[Paste]:
    return [
        Paste(SourceFace(f"person{i}", PHOTOS[i % 3], FACE_BOX), photo(i % 3), width, tag=i)
        for i in range(count)
    ]


def render(seed: int, width: float, faces: list[Box] | None = None) -> Scene:
    background = maker().make(np.random.default_rng([seed, 1]))
    if faces is not None:
        background.faces = faces
    return scenes.compose(background, pastes(width), np.random.default_rng([seed, 2]))


def test_the_same_seed_gives_the_same_frame_and_another_seed_another() -> None:
    a, b = render(7, 40), render(7, 40)
    assert np.array_equal(a.image, b.image)
    assert [f.box for f in a.faces] == [f.box for f in b.faces]
    assert a.ignore == b.ignore
    c = render(8, 40)
    assert not np.array_equal(a.image, c.image)


def test_frames_have_the_size_asked_and_real_never_flat_backgrounds() -> None:
    kinds = set()
    for seed in range(12):
        background = maker().make(np.random.default_rng(seed))
        kinds.add(background.kind.split(":")[0])
        assert background.image.shape == (SIZE[1], SIZE[0], 3)
        assert background.image.dtype == np.uint8
        assert float(background.image.std()) > 10.0  # a scene, not a colour
        # and no large flat area: every quarter of the frame shows texture
        h, w = SIZE[1] // 2, SIZE[0] // 2
        for y in (0, h):
            for x in (0, w):
                assert float(background.image[y : y + h, x : x + w].std()) > 2.0
    assert kinds == {"clip", "mosaic"}


def test_extra_backgrounds_are_used() -> None:
    extra = np.zeros((200, 300, 3), np.uint8)
    extra[:, :, 2] = np.arange(300, dtype=np.uint8)[None, :]  # a red ramp, easy to recognise
    kinds = {
        maker((extra,)).make(np.random.default_rng(seed)).kind.split(":")[0] for seed in range(30)
    }
    assert kinds == {"clip", "mosaic", "extra"}


@pytest.mark.parametrize("width", [16, 24, 40, 64])
def test_faces_have_the_width_asked_and_lie_inside_the_frame(width: int) -> None:
    scene = render(3, width)
    assert len(scene.faces) + len(scene.unplaced) == 3
    assert scene.faces, "nothing placed"
    for face in scene.faces:
        x1, y1, x2, y2 = face.box
        assert x2 - x1 == pytest.approx(width, rel=0.01)
        assert face.width == width
        rx1, ry1, rx2, ry2 = face.region
        assert min(rx1, ry1) >= 0 and rx2 <= SIZE[0] and ry2 <= SIZE[1]
        assert rx1 <= x1 and ry1 <= y1 and x2 <= rx2 and y2 <= ry2
        # the whole photo: about 250 / 100 = 2.5 face widths across
        assert rx2 - rx1 == pytest.approx(2.5 * width, abs=1)


def test_pasted_faces_keep_clear_of_visible_real_faces_and_photos_of_each_other() -> None:
    real = [(100.0, 80.0, 140.0, 130.0), (300.0, 200.0, 330.0, 236.0), (20.0, 250.0, 34.0, 266.0)]
    for seed in range(20):
        scene = render(seed, 24, faces=real)
        assert len(scene.faces) == 3
        regions = [tuple(float(v) for v in f.region) for f in scene.faces]
        for other in real:
            grown = scenes.grow(other, scenes.AVOID_GROW)
            if other not in scene.ignore:  # gone: under the opaque part of a pasted photo
                assert any(scenes._contains(scenes.core(r), grown) for r in regions)
                continue
            for face in scene.faces:
                near = scenes.grow(face.box, scenes.FACE_CLEARANCE)
                assert scenes.overlap(near, grown) == 0
        for i, region in enumerate(regions):
            for later in regions[i + 1 :]:
                assert scenes.overlap(region, later) == 0


def test_a_real_face_under_the_opaque_middle_of_a_pasted_photo_is_gone() -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (120, 120, 3), dtype=np.uint8)
    real = (50.0, 50.0, 64.0, 66.0)  # wherever the 100 px photo goes, it covers this face
    background = Background(image, "test", [real])
    scene = scenes.compose(background, pastes(40, 1), np.random.default_rng(0))
    (placed,) = scene.faces
    assert real not in scene.ignore
    assert scenes._contains(scenes.core(tuple(map(float, placed.region))), real)


def test_a_face_without_room_is_left_out_and_named() -> None:
    background = maker().make(np.random.default_rng(0))
    background.faces = [(0.0, 0.0, float(SIZE[0]), float(SIZE[1]))]  # a face over everything
    scene = scenes.compose(background, pastes(24), np.random.default_rng(0))
    assert scene.faces == [] and scene.unplaced == [0, 1, 2]


def test_the_other_faces_of_a_pasted_photo_become_ignore_regions() -> None:
    other = (200.0, 20.0, 240.0, 70.0)
    face = SourceFace("p", PHOTOS[0], FACE_BOX, (other,))
    background = Background(np.full((SIZE[1], SIZE[0], 3), 90, np.uint8), "test")
    scene = scenes.compose(background, [Paste(face, photo(0), 50.0, 0)], np.random.default_rng(1))
    (placed,) = scene.faces
    scale = 50.0 / 100.0
    x, y = placed.region[0], placed.region[1]
    (moved,) = scene.ignore
    assert moved == pytest.approx((x + 200 * scale, y + 20 * scale, x + 240 * scale, y + 35))


def test_the_soft_edge_fades_the_photo_out() -> None:
    mask = scenes.soft_mask(100, 100)
    assert mask[50, 50] == 1.0
    assert mask[0, 0] < 0.01 and mask[0, 50] < 0.01 and mask[50, 99] < 0.01
    assert 0.3 < mask[50, 7] < 0.7  # halfway through the 15 % fade


def test_the_finish_blurs_and_compresses() -> None:
    rng = np.random.default_rng(0)
    canvas = rng.uniform(0, 255, (64, 64, 3)).astype(np.float32)
    out = scenes.finish(canvas)
    assert out.shape == (64, 64, 3) and out.dtype == np.uint8
    assert float(out.std()) < float(canvas.std()) * 0.8  # the blur took out pixel noise


def _scene(truth: list[Box], ignore: list[Box]) -> Scene:
    faces = [PlacedFace(i, f"p{i}", 40.0, b, (0, 0, 1, 1)) for i, b in enumerate(truth)]
    return Scene(np.zeros((1, 1, 3), np.uint8), faces, ignore)


def test_scoring_sorts_detections_into_hits_duplicates_ignored_and_false() -> None:
    truth = [(100.0, 100.0, 140.0, 150.0), (300.0, 100.0, 340.0, 150.0)]
    ignore = [(500.0, 300.0, 530.0, 340.0)]
    boxes = [
        (301.0, 101.0, 341.0, 151.0),  # hit on face 1
        (99.0, 102.0, 139.0, 149.0),  # hit on face 0
        (102.0, 98.0, 142.0, 152.0),  # a second box on face 0
        (110.0, 120.0, 130.0, 140.0),  # a box inside face 0, IoU < 0.5: a misplaced box
        (502.0, 301.0, 531.0, 342.0),  # a real background face
        (800.0, 500.0, 830.0, 540.0),  # nothing there
    ]
    result = scenes.score(_scene(truth, ignore), boxes)
    assert result.hits == {1: 0, 0: 1}
    assert sorted(result.duplicates) == [2, 3]
    assert result.ignored == [4]
    assert result.false == [5]


def test_a_box_on_a_real_face_beside_a_pasted_one_is_ignored_not_a_duplicate() -> None:
    truth = [(100.0, 100.0, 140.0, 150.0)]
    neighbour = (135.0, 105.0, 175.0, 155.0)  # someone beside the labelled face in its photo
    result = scenes.score(_scene(truth, [neighbour]), [(136.0, 104.0, 176.0, 154.0)])
    assert result.hits == {} and result.ignored == [0] and result.duplicates == []


def test_a_missed_face_is_no_hit_and_a_low_overlap_box_no_hit() -> None:
    truth = [(100.0, 100.0, 140.0, 150.0)]
    result = scenes.score(_scene(truth, []), [(120.0, 125.0, 160.0, 175.0)])  # IoU about 0.14
    assert result.hits == {} and result.duplicates == [0]


def test_tiles_cover_the_frame_and_overlap() -> None:
    regions = groundtruth.tiles(1000, 600, 256, 128)
    covered = np.zeros((600, 1000), bool)
    for x1, y1, x2, y2 in regions:
        assert x2 - x1 == 256 and y2 - y1 == 256
        covered[y1:y2, x1:x2] = True
    assert covered.all()
    xs = sorted({r[0] for r in regions})
    assert all(b - a <= 128 for a, b in itertools.pairwise(xs))
    assert groundtruth.tiles(200, 100, 256, 64) == [(0, 0, 200, 100)]


def test_the_sensitive_scan_puts_tile_faces_in_frame_pixels() -> None:
    image = np.zeros((300, 500, 3), np.uint8)
    image[200:230, 400:420] = 255  # a "face" the fake detector finds where it sees white

    def detect(part: Image) -> list[Box]:
        ys, xs = np.nonzero(part[:, :, 0])
        if len(xs) == 0 or part.shape[:2] == image.shape[:2]:  # blind on the whole frame
            return []
        return [(float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1))]

    found = groundtruth.sensitive_scan(image, detect, [(128, 64)])
    assert found == [(400.0, 200.0, 420.0, 230.0)]  # seen in several tiles, kept once


def test_other_faces_leave_out_the_labelled_one_its_parts_and_specks() -> None:
    labelled = (80.0, 70.0, 170.0, 180.0)
    found = [
        (82.0, 72.0, 168.0, 178.0),  # the labelled face again
        (10.0, 10.0, 40.0, 45.0),  # someone else
        (0.0, 0.0, 250.0, 250.0),  # a box around everything
        (110.0, 140.0, 140.0, 165.0),  # the mouth
        (200.0, 30.0, 210.0, 40.0),  # a speck: an ear or a logo
        (130.0, 120.0, 195.0, 185.0),  # a head close beside, centred inside the labelled box
    ]
    assert groundtruth.other_faces(found, labelled) == (
        (10.0, 10.0, 40.0, 45.0),
        (130.0, 120.0, 195.0, 185.0),
    )
