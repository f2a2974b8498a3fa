"""From a track's shots to a watchlist decision, and at most one alert per entry per cooldown.

The watchlist itself is a :class:`Gallery`: whatever answers "who is this embedding?" (the
device's installed :class:`edge.watchlist.matcher.Watchlist` fits; the wiring in
:mod:`edge.services.recognizer` passes it in).

Two policies (``tracker.decision``):

- ``votes`` (default): a track matches entry E when ``min_votes`` of its shots (each above the
  quality floor, each searched on its own) have E as their best entry at or above the list's
  threshold, those votes outnumber the votes for any other entry, and they are at least
  ``min_vote_share`` of the shots taken since the track's last decision. One blurry frame that
  happens to score high cannot name anybody.
- ``best``: every ``window_s`` of a track's life (or its whole life, if shorter), its
  best-quality shot decides alone.

A match raises a :class:`Hit` unless the same entry was alerted less than ``cooldown_s`` ago (on
the source clock), from this track or any other. Matching shots of the alerted entry are then
used up: another alert for it needs fresh evidence and the cooldown to have passed.

A person at dispatch may reject a hit ("not this person"): :meth:`Decider.reject` (called from
the review callback the wiring in :mod:`edge.services.recognizer` installs) remembers the track
and entry, and that track never alerts for that entry again. It still may for another entry, and
another track (a later pass of the same face) is judged afresh.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import numpy.typing as npt

from edge.config.tracker import TrackerConfig
from edge.pipeline.track import Shot, Track
from edge.types import Box, ContextFrame, Identification

log = logging.getLogger(__name__)

MAX_REJECTED = 10_000  # rejected (track, entry) pairs remembered; the oldest go first


class Gallery(Protocol):
    """What the pipeline needs of a watchlist: the best entries for one embedding, and the
    decision at the list's threshold."""

    def identify(self, embedding: npt.ArrayLike, now: datetime | None = None) -> Identification: ...


@dataclass(frozen=True)
class Hit:
    """A decided match that is to become an alert."""

    track_id: int
    entry_id: int
    label: str
    score: float
    threshold: float
    quality: float
    frame_index: int
    source_time_s: float  # on the source's clock (seconds into a file, or since a stream began)
    event_time: datetime  # when the frame was captured (the alert's event_time)
    box: Box
    votes: int
    crop_jpeg: bytes | None = None
    context: ContextFrame | None = None


class Decider:
    """Applies the decision policy and the per-entry cooldown to the tracks of one source."""

    def __init__(self, config: TrackerConfig, *, min_votes: int | None = None) -> None:
        self.config = config
        self.min_votes = min_votes if min_votes is not None else config.min_votes
        self.suppressed = 0  # matches not alerted because of the cooldown
        self.rejected = 0  # matches not alerted because dispatch rejected that track's match
        self._last_alert: dict[int, float] = {}  # entry id -> source time of its last alert
        # (track id, entry id) pairs a person rejected. Written by the review callback's thread.
        self._rejections: OrderedDict[tuple[int, int], None] = OrderedDict()
        self._rejections_lock = threading.Lock()

    def reject(self, track_id: int, entry_id: int) -> None:
        """Dispatch rejected this track's match to this entry: do not alert it again.

        Thread-safe (the review callback runs on the MQTT thread)."""
        with self._rejections_lock:
            self._rejections[(track_id, entry_id)] = None
            self._rejections.move_to_end((track_id, entry_id))
            while len(self._rejections) > MAX_REJECTED:
                self._rejections.popitem(last=False)

    def is_rejected(self, track_id: int, entry_id: int) -> bool:
        with self._rejections_lock:
            return (track_id, entry_id) in self._rejections

    def wants_context(self, track: Track, shot: Shot) -> bool:
        """Whether ``shot`` (attached to ``track``, not yet observed) could become the shot of
        an alert, so is worth a context frame (which costs a scan of the whole frame): it
        matched, its entry is neither in its cooldown nor rejected for this track, and no shot
        already pending would be chosen over it (votes: one as high for that entry; best: one
        of better quality in the window)."""
        match = shot.match
        if match is None or self.is_rejected(track.id, match.entry_id):
            return False
        if self._cooling(match.entry_id, shot.t):
            return False
        if self.config.decision == "best":
            return track.window is None or shot.quality > track.window.quality
        pending = track.votes.get(match.entry_id, [])
        return all(v.match is None or v.match.score < match.score for v in pending)

    def _cooling(self, entry_id: int, t: float) -> bool:
        last = self._last_alert.get(entry_id)
        return last is not None and abs(t - last) < self.config.cooldown_s

    def observe(self, track: Track, shot: Shot) -> list[Hit]:
        """A new shot of ``track`` (already attached to it)."""
        if self.config.decision == "best":
            if track.window_start is None:
                track.window_start = shot.t
            if track.window is None or shot.quality > track.window.quality:
                track.window = shot
            return self.tick(track, shot.t)
        if shot.match is None:
            return []
        entry = shot.match.entry_id
        votes = track.votes.setdefault(entry, [])
        votes.append(shot)
        rivals = max((len(v) for e, v in track.votes.items() if e != entry), default=0)
        if (
            len(votes) < self.min_votes
            or len(votes) <= rivals
            or len(votes) < self.config.min_vote_share * track.evidence
        ):
            return []
        best = max(votes, key=lambda s: s.match.score if s.match is not None else -1.0)
        count = len(votes)
        track.votes.clear()
        track.evidence = 0
        return self._decide(track, best, count)

    def tick(self, track: Track, t: float) -> list[Hit]:
        """Time passes for a live track (the 'best' policy closes windows here)."""
        if self.config.decision != "best" or track.window_start is None:
            return []
        if t - track.window_start < self.config.window_s:
            return []
        return self._close_window(track)

    def finish(self, track: Track) -> list[Hit]:
        """``track`` has ended: decide on what is pending, then it is forgotten."""
        hits = self._close_window(track) if self.config.decision == "best" else []
        track.forget()
        with self._rejections_lock:
            for pair in [p for p in self._rejections if p[0] == track.id]:
                del self._rejections[pair]
        return hits

    def _close_window(self, track: Track) -> list[Hit]:
        shot = track.window
        track.window, track.window_start = None, None
        track.evidence = 0
        if shot is None or shot.match is None:
            return []
        return self._decide(track, shot, 1)

    def _decide(self, track: Track, shot: Shot, votes: int) -> list[Hit]:
        match = shot.match
        assert match is not None
        track.label = match.label
        if self.is_rejected(track.id, match.entry_id):
            self.rejected += 1
            log.debug(
                "track %d matched entry %d, which dispatch rejected for it: no alert",
                track.id,
                match.entry_id,
            )
            return []
        if self._cooling(match.entry_id, shot.t):
            self.suppressed += 1
            log.debug(
                "track %d matched entry %d again within the cooldown: no alert",
                track.id,
                match.entry_id,
            )
            return []
        self._last_alert[match.entry_id] = shot.t
        return [
            Hit(
                track_id=track.id,
                entry_id=match.entry_id,
                label=match.label,
                score=match.score,
                threshold=shot.threshold,
                quality=shot.quality,
                frame_index=shot.frame_index,
                source_time_s=shot.t,
                event_time=shot.wall,
                box=shot.box,
                votes=votes,
                crop_jpeg=shot.crop_jpeg,
                context=shot.context,
            )
        ]
