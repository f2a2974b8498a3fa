"""Review decisions fed back into a run (edge.services.feedback), without a broker."""

from __future__ import annotations

from typing import Literal

from edge.alerts.model import Review
from edge.services import feedback
from edge.services.feedback import ReviewFeedback


def _review(alert_id: str, decision: Literal["confirm", "reject"] = "reject") -> Review:
    return Review(alert_id=alert_id, decision=decision, by="op", time=None, note=None)


def test_a_rejected_alert_tells_the_decider_its_track_and_entry() -> None:
    rejected: list[tuple[int, int]] = []
    fb = ReviewFeedback(lambda track, entry: rejected.append((track, entry)))
    fb.remember("a1", 7, 3)
    fb.on_review(_review("a1", "confirm"))
    fb.on_review(_review("unknown"))
    assert rejected == []
    fb.on_review(_review("a1"))
    assert rejected == [(7, 3)]


def test_only_the_latest_alerts_are_remembered() -> None:
    rejected: list[tuple[int, int]] = []
    fb = ReviewFeedback(lambda track, entry: rejected.append((track, entry)))
    for n in range(feedback.ALERTS_REMEMBERED + 1):
        fb.remember(f"a{n}", n, 0)
    fb.on_review(_review("a0"))
    fb.on_review(_review(f"a{feedback.ALERTS_REMEMBERED}"))
    assert rejected == [(feedback.ALERTS_REMEMBERED, 0)]
