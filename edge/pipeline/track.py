"""Face tracks across frames: association by box overlap, identity checks by embedding, and the
few best shots of each track.

Every frame's detections are matched to the live tracks by the overlap (IoU) of their boxes with
each track's predicted box (last box moved by its recent velocity); a detection that overlaps no
track starts a new one. Embeddings, which only some frames get (see ``tracker.assess_every``),
check identity: one far from its track's mean ends the track and starts another (boxes swapped,
or a cut to someone else in the same place), and a new track whose first embedding is close to
a recently lost one continues it.

Privacy: a :class:`Track` holds everything known about a face (boxes, embeddings, and the crops
and context frames of shots that matched the watchlist) in memory only. The tracker lets go of a
track when it ends and nothing of it is written anywhere, unless the decision stage turned it
into an alert.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np

from edge.config.tracker import TrackerConfig
from edge.types import Box, ContextFrame, Detection, FloatArray, Match, iou

_VELOCITY_SMOOTHING = 0.5  # weight of the newest velocity measurement
_MAX_PREDICT_S = 0.5  # never extrapolate a box further than this
# A face does not change size by half from one sighting to the next: such a box is someone else.
MAX_SIZE_STEP = 1.5


def _similar_size(a: Box, b: Box) -> bool:
    wa, wb = a[2] - a[0], b[2] - b[0]
    return wa > 0 and wb > 0 and max(wa, wb) / min(wa, wb) <= MAX_SIZE_STEP


@dataclass(eq=False)
class Shot:
    """One embedded sighting of a track's face, with what the watchlist said about it."""

    frame_index: int
    t: float
    wall: datetime
    box: Box
    quality: float
    embedding: FloatArray
    threshold: float  # the list's threshold when it was searched
    match: Match | None = None  # best entry if it reached the threshold
    best: Match | None = None  # best entry whatever its score (for the debug log)
    crop_jpeg: bytes | None = None  # only ever made for a shot that matched
    context: ContextFrame | None = None  # only for a matched shot that may become an alert


class Track:
    """One face followed across frames."""

    def __init__(self, track_id: int, box: Box, t: float, frame_index: int) -> None:
        self.id = track_id
        self.box = box
        self.first_t = t
        self.last_t = t
        self.last_frame = frame_index
        self.seen = 1
        self.velocity = (0.0, 0.0)  # box centre, pixels per second of source time
        self.shots: list[Shot] = []  # the best max_shots by quality, best first
        self.embedded = 0  # shots taken over the track's life
        self._sum: FloatArray | None = None
        # Scheduling of the expensive stages (align, quality, embed).
        self.assessed = False
        self.since_assess = 0  # frames seen since the last assessment
        self.best_proxy = -1.0  # best cheap quality estimate at an assessment
        # Decision state (see edge.pipeline.decide).
        self.votes: dict[int, list[Shot]] = {}
        self.evidence = 0  # shots since the last decision
        self.window: Shot | None = None  # best shot of the current 'best' window
        self.window_start: float | None = None
        self.label: str | None = None  # the entry it matched, for display

    @property
    def centroid(self) -> FloatArray | None:
        """The unit mean of every embedding the track has had."""
        if self._sum is None:
            return None
        norm = float(np.linalg.norm(self._sum))
        return np.asarray(self._sum / max(norm, 1e-12), dtype=np.float32)

    def similarity(self, embedding: FloatArray) -> float | None:
        centroid = self.centroid
        return None if centroid is None else float(centroid @ embedding)

    def predict(self, t: float) -> Box:
        dt = min(max(t - self.last_t, 0.0), _MAX_PREDICT_S)
        dx, dy = self.velocity[0] * dt, self.velocity[1] * dt
        x1, y1, x2, y2 = self.box
        return (x1 + dx, y1 + dy, x2 + dx, y2 + dy)

    def observe(self, box: Box, t: float, frame_index: int) -> None:
        dt = t - self.last_t
        if dt > 0:
            old_cx, old_cy = (self.box[0] + self.box[2]) / 2, (self.box[1] + self.box[3]) / 2
            new_cx, new_cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
            a = _VELOCITY_SMOOTHING
            self.velocity = (
                a * (new_cx - old_cx) / dt + (1 - a) * self.velocity[0],
                a * (new_cy - old_cy) / dt + (1 - a) * self.velocity[1],
            )
        self.box = box
        self.last_t = t
        self.last_frame = frame_index
        self.seen += 1

    def add_shot(self, shot: Shot, max_shots: int) -> None:
        vector = shot.embedding.astype(np.float32)
        self._sum = vector.copy() if self._sum is None else self._sum + vector
        self.embedded += 1
        self.evidence += 1
        self.shots.append(shot)
        self.shots.sort(key=lambda s: -s.quality)
        del self.shots[max_shots:]

    def forget(self) -> None:
        """Drop every embedding, crop and context frame the track holds (it has ended)."""
        self.shots.clear()
        self.votes.clear()
        self.window = None
        self._sum = None


class Tracker:
    """The live tracks of one video source."""

    def __init__(self, config: TrackerConfig) -> None:
        self.config = config
        self.tracks: dict[int, Track] = {}
        self.created = 0  # tracks started (continued and merged ones count once)
        self.splits = 0
        self.reidentified = 0
        self._next_id = 1

    def _new_track(self, box: Box, t: float, frame_index: int) -> Track:
        track = Track(self._next_id, box, t, frame_index)
        self._next_id += 1
        self.created += 1
        self.tracks[track.id] = track
        return track

    def update(
        self, detections: list[Detection], t: float, frame_index: int
    ) -> list[tuple[Track, Detection]]:
        """Assign each detection to a track (greedily, highest overlap first), starting new
        tracks for the rest. Returns (track, detection) pairs in detection order."""
        tracks = list(self.tracks.values())
        predicted = [track.predict(t) for track in tracks]
        pairs: list[tuple[float, int, int]] = []
        for d, detection in enumerate(detections):
            for k, box in enumerate(predicted):
                overlap = iou(detection.box, box)
                if overlap >= self.config.iou_threshold and _similar_size(detection.box, box):
                    pairs.append((overlap, d, k))
        pairs.sort(key=lambda p: -p[0])
        assigned: dict[int, Track] = {}
        taken: set[int] = set()
        for _, d, k in pairs:
            if d in assigned or k in taken:
                continue
            assigned[d] = tracks[k]
            taken.add(k)
        out = []
        for d, detection in enumerate(detections):
            track = assigned.get(d)
            if track is None:
                track = self._new_track(detection.box, t, frame_index)
            else:
                track.observe(detection.box, t, frame_index)
            out.append((track, detection))
        return out

    def attach(self, track: Track, shot: Shot) -> tuple[Track, Track | None]:
        """Give ``track`` its new shot after the identity checks.

        Returns the track that took the shot (``track``; a lost track it turned out to continue;
        or a new track if the shot is someone else) and the track that ended because of it, if
        any (already removed: the caller finishes and forgets it)."""
        cfg = self.config
        if track.embedded == 0:
            best: tuple[float, Track] | None = None
            for other in self.tracks.values():
                if other is track or other.embedded == 0 or other.last_t >= shot.t:
                    continue  # only tracks not seen in this frame can be continued
                similarity = other.similarity(shot.embedding)
                if similarity is None or similarity < cfg.reid_above:
                    continue
                if best is None or similarity > best[0]:
                    best = (similarity, other)
            if best is not None:
                lost = best[1]
                del self.tracks[track.id]
                self.created -= 1
                self.reidentified += 1
                lost.observe(track.box, shot.t, shot.frame_index)
                lost.velocity = (0.0, 0.0)  # it reappeared elsewhere: no motion to extrapolate
                lost.assessed, lost.since_assess = True, 0
                lost.best_proxy = max(lost.best_proxy, track.best_proxy)
                lost.add_shot(shot, cfg.max_shots)
                return lost, None
        else:
            similarity = track.similarity(shot.embedding)
            if similarity is not None and similarity < cfg.split_below:
                del self.tracks[track.id]
                self.splits += 1
                fresh = self._new_track(shot.box, shot.t, shot.frame_index)
                fresh.assessed, fresh.best_proxy = True, track.best_proxy
                fresh.add_shot(shot, cfg.max_shots)
                return fresh, track
        track.add_shot(shot, cfg.max_shots)
        return track, None

    def expire(self, t: float) -> list[Track]:
        """Remove and return the tracks not seen for longer than ``lost_ttl_s``."""
        ended = [tr for tr in self.tracks.values() if t - tr.last_t > self.config.lost_ttl_s]
        for track in ended:
            del self.tracks[track.id]
        return ended

    def end_all(self) -> list[Track]:
        ended = list(self.tracks.values())
        self.tracks.clear()
        return ended
