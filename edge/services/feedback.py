"""Review decisions from dispatch, fed back into a run's pipeline.

A rejected alert ("not this person") arrives on the publisher's thread; it is mapped back to the
track and entry it was raised for, and the pipeline's decider is told, so that track does not
alert for that entry again. Alerts of earlier runs are only logged.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable

from edge.alerts.model import Review

# The run's log lines keep the one logger name they had before the Runner was split.
log = logging.getLogger("edge.services.recognizer")

ALERTS_REMEMBERED = 10_000  # alert id -> (track, entry), for review decisions that come later


class ReviewFeedback:
    """The alert -> (track, entry) map of one run, and what a review does with it."""

    def __init__(self, reject: Callable[[int, int], None]) -> None:
        self._reject = reject  # (track id, entry id): the decider's, thread-safe
        self._tracks: OrderedDict[str, tuple[int, int]] = OrderedDict()
        self._lock = threading.Lock()

    def remember(self, alert_id: str, track_id: int, entry_id: int) -> None:
        """An alert was committed (alert thread); the oldest are forgotten past a bound."""
        with self._lock:
            self._tracks[alert_id] = (track_id, entry_id)
            while len(self._tracks) > ALERTS_REMEMBERED:
                self._tracks.popitem(last=False)

    def on_review(self, review: Review) -> None:
        """A dispatch decision (publisher thread): a rejected match is not alerted again for
        the same track."""
        if review.decision != "reject":
            return
        with self._lock:
            known = self._tracks.get(review.alert_id)
        if known is None:
            log.info("review: alert %s rejected (not one of this run's alerts)", review.alert_id)
            return
        track_id, entry_id = known
        self._reject(track_id, entry_id)
        log.info(
            "review: alert %s rejected by %s: track %d will not alert for entry %d again",
            review.alert_id,
            review.by or "dispatch",
            track_id,
            entry_id,
        )
