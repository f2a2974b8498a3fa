"""Tracker and decision policy on synthetic detections and embeddings (no models)."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from edge.config import Config
from edge.config.tracker import TrackerConfig
from edge.pipeline.decide import Decider
from edge.pipeline.track import Shot, Track, Tracker
from edge.types import Box, ContextFrame, Detection, Match, iou

WALL = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
THRESHOLD = 0.45


def det(box: Box, score: float = 0.9) -> Detection:
    return Detection(box=box, score=score, keypoints=np.zeros((6, 2), np.float32))


def unit(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal(192).astype(np.float32)
    return v / np.linalg.norm(v)


def near(v: np.ndarray, cos: float, seed: int) -> np.ndarray:
    """A unit vector at cosine ``cos`` to the unit vector ``v``."""
    n = unit(seed)
    n = n - (n @ v) * v
    n /= np.linalg.norm(n)
    return (cos * v + np.sqrt(1 - cos**2) * n).astype(np.float32)


def config(**kw: object) -> TrackerConfig:
    return TrackerConfig.model_validate(kw)


def shot(
    frame: int,
    t: float,
    embedding: np.ndarray,
    *,
    entry: int | None = None,
    score: float = 0.6,
    quality: float = 0.9,
    box: Box = (100, 100, 160, 160),
) -> Shot:
    match = Match(entry, f"person-{entry}", score, entry * 10) if entry is not None else None
    return Shot(frame, t, WALL, box, quality, embedding, THRESHOLD, match, match, None)


def test_iou() -> None:
    assert iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert iou((0, 0, 10, 10), (20, 20, 30, 30)) == 0.0
    assert iou((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(50 / 150)


def test_faces_keep_their_track_while_they_move() -> None:
    tracker = Tracker(config())
    a, b = (100.0, 100.0, 160.0, 160.0), (400.0, 100.0, 460.0, 160.0)
    ids = None
    for frame in range(30):
        dx = 3.0 * frame  # both move right, 3 px a frame
        pairs = tracker.update(
            [det((a[0] + dx, a[1], a[2] + dx, a[3])), det((b[0] - dx, b[1], b[2] - dx, b[3]))],
            frame / 30,
            frame,
        )
        now = [track.id for track, _ in pairs]
        assert ids is None or now == ids
        ids = now
    assert tracker.created == 2 and len(tracker.tracks) == 2


def test_a_lost_track_ends_after_its_ttl_and_a_new_face_gets_a_new_track() -> None:
    tracker = Tracker(config(lost_ttl_s=1.0))
    box = (100.0, 100.0, 160.0, 160.0)
    ((first, _),) = tracker.update([det(box)], 0.0, 0)
    assert tracker.expire(0.9) == []
    ((again, _),) = tracker.update([det(box)], 0.9, 27)  # back within the ttl: same track
    assert again is first
    assert tracker.expire(2.0) == [first] and not tracker.tracks
    ((later, _),) = tracker.update([det(box)], 2.0, 60)
    assert later.id != first.id


def test_a_box_of_a_very_different_size_is_not_the_same_face() -> None:
    tracker = Tracker(config())
    ((big, _),) = tracker.update([det((100, 100, 200, 200))], 0.0, 0)
    # Overlaps well enough (IoU 0.36) but is 60 % of the width: a cut or another person.
    ((small, _),) = tracker.update([det((120, 120, 180, 180))], 1 / 30, 1)
    assert small is not big


def test_an_embedding_far_from_the_track_splits_it() -> None:
    tracker = Tracker(config(split_below=0.1))
    person_a, person_b = unit(1), unit(2)
    ((track, _),) = tracker.update([det((100, 100, 160, 160))], 0.0, 0)
    owner, ended = tracker.attach(track, shot(0, 0.0, person_a))
    assert owner is track and ended is None
    owner, ended = tracker.attach(track, shot(5, 5 / 30, near(person_a, 0.6, 3)))
    assert owner is track and ended is None and track.embedded == 2
    ((same, _),) = tracker.update([det((102, 100, 162, 160))], 10 / 30, 10)
    assert same is track
    owner, ended = tracker.attach(same, shot(10, 10 / 30, person_b))  # boxes swapped people
    assert ended is track and owner is not track
    assert owner.embedded == 1 and owner.id in tracker.tracks and track.id not in tracker.tracks
    assert tracker.splits == 1


def test_a_new_track_close_to_a_lost_one_continues_it() -> None:
    tracker = Tracker(config(reid_above=0.5, lost_ttl_s=1.0))
    person = unit(7)
    ((track, _),) = tracker.update([det((100, 100, 160, 160))], 0.0, 0)
    tracker.attach(track, shot(0, 0.0, person))
    # The face reappears elsewhere (no overlap) half a second later.
    ((fresh, _),) = tracker.update([det((400, 300, 460, 360))], 0.5, 15)
    assert fresh is not track
    owner, ended = tracker.attach(fresh, shot(15, 0.5, near(person, 0.7, 8)))
    assert owner is track and ended is None
    assert fresh.id not in tracker.tracks and track.box == (400, 300, 460, 360)
    assert tracker.created == 1 and tracker.reidentified == 1 and track.embedded == 2
    # A stranger appearing is not merged.
    ((other, _),) = tracker.update([det((10, 10, 70, 70))], 0.6, 18)
    owner, _ = tracker.attach(other, shot(18, 0.6, unit(9)))
    assert owner is other


def test_a_track_keeps_only_its_best_shots() -> None:
    track = Track(1, (0, 0, 10, 10), 0.0, 0)
    for i, quality in enumerate([0.3, 0.9, 0.5, 0.95, 0.4, 0.7]):
        track.add_shot(shot(i, i / 30, unit(i), quality=quality), max_shots=3)
    assert [s.quality for s in track.shots] == [0.95, 0.9, 0.7]
    assert track.embedded == 6
    track.forget()
    assert track.shots == [] and track.centroid is None


def _track_with(decider: Decider, shots: list[Shot]) -> tuple[Track, list[object]]:
    track = Track(1, (0, 0, 10, 10), 0.0, 0)
    hits: list[object] = []
    for s in shots:
        track.add_shot(s, 5)
        hits += decider.observe(track, s)
    return track, hits


def test_one_matching_frame_is_not_enough_with_two_votes() -> None:
    decider = Decider(config(min_votes=2))
    person = unit(11)
    _, hits = _track_with(decider, [shot(0, 0.0, person, entry=3, score=0.9)])
    assert hits == []
    _, hits = _track_with(
        decider,
        [shot(0, 0.0, person, entry=3, score=0.52), shot(5, 0.17, person, entry=3, score=0.61)],
    )
    assert len(hits) == 1
    hit = hits[0]
    # The alert carries the best-scoring vote: its frame, score and quality.
    assert (hit.entry_id, hit.frame_index, hit.score, hit.votes) == (3, 5, 0.61, 2)  # type: ignore[attr-defined]


def test_votes_must_be_a_large_enough_share_and_outnumber_rivals() -> None:
    decider = Decider(config(min_votes=2, min_vote_share=0.5))
    person = unit(12)
    misses = [shot(i, i / 30, person) for i in range(4)]
    _, hits = _track_with(
        decider,
        [*misses, shot(4, 0.2, person, entry=1), shot(5, 0.3, person, entry=1)],
    )
    assert hits == []  # 2 votes out of 6 shots
    _, hits = _track_with(
        decider,
        [
            shot(0, 0.0, person, entry=1),
            shot(1, 0.1, person, entry=2),
            shot(2, 0.2, person, entry=1),
        ],
    )
    assert [h.entry_id for h in hits] == [1]  # type: ignore[attr-defined]


def test_at_most_one_alert_per_entry_per_cooldown_across_tracks() -> None:
    decider = Decider(config(min_votes=1, cooldown_s=10.0))
    person = unit(13)
    _, first = _track_with(decider, [shot(0, 0.0, person, entry=4)])
    _, second = _track_with(decider, [shot(30, 1.0, person, entry=4)])  # another track
    _, other_entry = _track_with(decider, [shot(31, 1.0, unit(14), entry=5)])
    _, after = _track_with(decider, [shot(400, 12.0, person, entry=4)])
    assert len(first) == 1 and second == [] and len(other_entry) == 1 and len(after) == 1
    assert decider.suppressed == 1


def test_best_policy_decides_on_the_best_shot_of_each_window() -> None:
    decider = Decider(config(decision="best", window_s=1.0, cooldown_s=0.0))
    person = unit(15)
    track = Track(1, (0, 0, 10, 10), 0.0, 0)
    hits = []
    for s in [
        shot(0, 0.0, person, quality=0.5),  # no match, low quality
        shot(5, 0.3, person, entry=2, quality=0.9, score=0.7),  # the best of the window
        shot(10, 0.6, person, quality=0.6),
    ]:
        track.add_shot(s, 5)
        hits += decider.observe(track, s)
    assert hits == []  # the window is still open
    hits = decider.tick(track, 1.1)
    assert [(h.entry_id, h.frame_index) for h in hits] == [(2, 5)]
    # A track that ends early is decided on what it had.
    short = Track(2, (0, 0, 10, 10), 2.0, 60)
    s = shot(60, 2.0, person, entry=2, quality=0.8)
    short.add_shot(s, 5)
    assert decider.observe(short, s) == []
    assert [h.frame_index for h in decider.finish(short)] == [60]
    assert short.shots == []  # forgotten


def test_tracker_config_defaults_are_part_of_the_root_config() -> None:
    root = Config()
    assert root.tracker.min_votes == 2 and root.capture.file_pacing == "asap"
    assert root.run.annotate_unmatched == "pixelate"


def test_a_rejected_match_does_not_alert_again_for_that_track() -> None:
    decider = Decider(config(min_votes=1, cooldown_s=0.0))
    person = unit(21)
    track = Track(1, (0, 0, 10, 10), 0.0, 0)
    first = shot(0, 0.0, person, entry=4)
    track.add_shot(first, 5)
    assert len(decider.observe(track, first)) == 1
    decider.reject(track.id, 4)  # dispatch: "not this person"
    again = shot(1, 1.0, person, entry=4)
    track.add_shot(again, 5)
    assert decider.observe(track, again) == [] and decider.rejected == 1
    other = shot(2, 2.0, unit(22), entry=5)  # another entry still alerts
    track.add_shot(other, 5)
    assert len(decider.observe(track, other)) == 1
    decider.finish(track)  # the track ended: its rejections are forgotten
    assert not decider.is_rejected(track.id, 4)
    _, later = _track_with(decider, [shot(50, 9.0, person, entry=4)])  # a new pass is judged afresh
    assert len(later) == 1


def test_only_a_matched_shot_that_may_become_an_alert_wants_a_context_frame() -> None:
    decider = Decider(config(min_votes=2, cooldown_s=10.0))
    person = unit(23)
    track = Track(1, (0, 0, 10, 10), 0.0, 0)
    assert not decider.wants_context(track, shot(0, 0.0, person))  # matched nothing
    first = shot(1, 0.1, person, entry=4, score=0.6)
    assert decider.wants_context(track, first)
    track.add_shot(first, 5)
    assert decider.observe(track, first) == []
    # The pending 0.6 vote would carry the alert, not this one.
    assert not decider.wants_context(track, shot(2, 0.2, person, entry=4, score=0.6))
    best = shot(3, 0.3, person, entry=4, score=0.7)
    assert decider.wants_context(track, best)
    best.context = ContextFrame(b"\xff\xd8\xff", 64, 36, (1, 2, 3, 4))
    track.add_shot(best, 5)
    hits = decider.observe(track, best)
    assert [h.context for h in hits] == [best.context]  # the alert carries its shot's frame
    assert not decider.wants_context(track, shot(4, 5.0, person, entry=4, score=0.9))  # cooldown
    assert decider.wants_context(track, shot(5, 5.0, person, entry=5))  # another entry
    assert decider.wants_context(track, shot(6, 10.3, person, entry=4))  # the cooldown is over
    decider.reject(track.id, 5)
    assert not decider.wants_context(track, shot(7, 11.0, person, entry=5))


def test_best_policy_wants_a_context_frame_for_the_best_shot_of_the_window_only() -> None:
    decider = Decider(config(decision="best", window_s=1.0, cooldown_s=0.0))
    person = unit(24)
    track = Track(1, (0, 0, 10, 10), 0.0, 0)
    good = shot(0, 0.0, person, entry=2, quality=0.8)
    assert decider.wants_context(track, good)
    track.add_shot(good, 5)
    decider.observe(track, good)
    assert not decider.wants_context(track, shot(1, 0.1, person, entry=2, quality=0.7))
    assert decider.wants_context(track, shot(2, 0.2, person, entry=2, quality=0.9))
