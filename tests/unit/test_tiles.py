"""Where the multi-scale detector looks: tile grids, derived levels, the video schedule, crops,
and the settings that cannot work (pure geometry, no model)."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from edge.cli import main
from edge.config import config_from_dict
from edge.config.recognition import DetectorConfig
from edge.errors import ConfigError
from edge.pipeline.tiles import (
    CROP_LEVEL,
    NO_TILES,
    Region,
    TileScheduler,
    crop_regions,
    derived_levels,
    plan_tiles,
    tile_grid,
)


def test_the_grid_covers_the_frame_with_at_least_the_overlap() -> None:
    tiles = tile_grid(1920, 1080, 384, 112)
    assert tiles[0].x == 0 and tiles[0].y == 0
    assert max(t.x2 for t in tiles) == 1920 and max(t.y2 for t in tiles) == 1080
    xs = sorted({t.x for t in tiles})
    assert all(b - a <= 384 - 112 for a, b in itertools.pairwise(xs))


def test_every_face_up_to_the_overlap_lies_whole_in_some_tile() -> None:
    rng = np.random.default_rng(0)
    tiles = tile_grid(1920, 1080, 384, 112)
    for _ in range(2000):
        side = rng.uniform(10, 112)
        x, y = rng.uniform(0, 1920 - side), rng.uniform(0, 1080 - side)
        assert any(t.contains((x, y, x + side, y + side)) for t in tiles)


def test_levels_are_derived_from_the_frame_size() -> None:
    levels = derived_levels(1920, 1080, 32.0)
    assert [(lv.tile_px, lv.overlap_px) for lv in levels] == [(768, 256), (384, 112)]
    assert len(plan_tiles(DetectorConfig(), 1920, 1080, video=True).grid(1920, 1080)) == 36
    assert [lv.tile_px for lv in derived_levels(3840, 2160, 32.0)] == [1536, 768, 384]


@pytest.mark.parametrize(
    ("tiling", "size", "tiled"),
    [
        ("auto", (1920, 1080), True),
        ("auto", (1280, 720), True),
        ("auto", (640, 360), False),  # the demo clip: whole frame only, as before
        ("auto", (250, 250), False),  # LFW photos
        ("on", (640, 360), True),
        ("off", (1920, 1080), False),
    ],
)
def test_tiling_auto_on_off(tiling: str, size: tuple[int, int], tiled: bool) -> None:
    config = DetectorConfig.model_validate({"tiling": tiling})
    plan = plan_tiles(config, *size, video=True)
    assert (plan is not NO_TILES) == tiled


def test_the_schedule_visits_every_tile_within_its_period() -> None:
    grid = plan_tiles(DetectorConfig(), 1920, 1080, video=True).grid(1920, 1080)
    scheduler = TileScheduler(grid, 3)
    assert scheduler.period() == 12  # 36 tiles, 3 a frame: each at least every 12 frames
    seen: set[Region] = set()
    for _ in range(scheduler.period()):
        picked = scheduler.next()
        assert len(picked) == 3
        seen.update(picked)
    assert seen == set(grid)


def test_crops_follow_small_tracked_faces_the_tiles_of_this_frame_miss() -> None:
    plan = plan_tiles(DetectorConfig(), 1920, 1080, video=True)
    tile = Region(0, 0, 384, 384, "tile", 1)
    inside = (100.0, 100.0, 140.0, 140.0)  # held whole by this frame's tile: no crop
    outside = (1000.0, 500.0, 1040.0, 540.0)
    large = (200.0, 600.0, 500.0, 900.0)  # the whole-frame pass finds it: no crop
    crops = crop_regions([(inside, 1.0), (outside, 0.5), (large, 2.0)], plan, 6, 1920, 1080, [tile])
    assert len(crops) == 1 and crops[0].contains(outside)
    assert crops[0].w == 200 and crops[0].level == CROP_LEVEL  # a 40 px face at a fifth
    many = [((x, 50.0, x + 30.0, 80.0), float(x)) for x in range(400, 1900, 100)]
    assert len(crop_regions(many, plan, 6, 1920, 1080)) == 6  # max_crops, stalest first


def test_a_tile_larger_than_a_video_frame_is_a_config_error_a_still_skips_it() -> None:
    config = DetectorConfig.model_validate(
        {"tiling": "on", "tiles": [{"size": 1024, "overlap": 200}, {"size": 384, "overlap": 96}]}
    )
    with pytest.raises(ConfigError, match=r"detector\.tiles\[0\]\.size 1024 .* 640x360"):
        plan_tiles(config, 640, 360, video=True)
    plan = plan_tiles(config, 640, 360, video=False)
    assert [lv.tile_px for lv in plan.levels] == [384]


@pytest.mark.parametrize(
    ("detector", "message"),
    [
        ({"tiles": [{"size": 384, "overlap": -8}]}, "overlap"),
        ({"tiles": [{"size": 384, "overlap": 384}]}, "smaller than the tile size"),
        ({"tiles_per_frame": 0}, "tiles_per_frame"),
        ({"tiles": [{"size": 384, "overlap": 96}, {"size": 768, "overlap": 96}]}, "coarse to fine"),
    ],
)
def test_settings_that_cannot_work_are_one_line_config_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], detector: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        config_from_dict({"detector": detector})
    import yaml

    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"detector": detector}))
    assert main(["config", "check", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("edge: error: invalid config") and message in err
    assert len(err.strip().splitlines()) == 1
