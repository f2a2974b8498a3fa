"""Fuzzing the alert, review and ack readers (what arrives from MQTT): only AlertError."""

from __future__ import annotations

import json

from alerts_helpers import sample_alert
from fuzz_helpers import documents, fuzz_settings, only_edge_errors
from hypothesis import example, given

from edge.alerts.model import Ack, Alert, Review
from edge.errors import AlertError

ALERT = sample_alert(crop_jpeg=b"\xff\xd8\xff\xe0" + bytes(40))
REVIEW = json.loads(
    Review(
        "019a7c3e-5b2d-7c41-9f0e-3d2b8a1c4e5f",
        "reject",
        "op-7",
        "2025-03-01T12:31:00Z",
        "not him",
    ).encode()
)
ACK = json.loads(
    Ack(("019a7c3e-5b2d-7c41-9f0e-3d2b8a1c4e5f",), "dispatch-1", "2025-03-01T12:31:00Z").encode()
)


def _only_alert_errors(call: object) -> None:
    error = only_edge_errors(call)  # type: ignore[arg-type]
    assert error is None or isinstance(error, AlertError), repr(error)


def test_the_valid_documents_decode() -> None:
    assert Alert.decode(ALERT.encode()) == ALERT
    assert Review.decode(json.dumps(REVIEW).encode()).decision == "reject"
    assert Ack.decode(json.dumps(ACK).encode()).alert_ids == tuple(ACK["alert_ids"])


@fuzz_settings()
@given(documents(ALERT.document()))
@example(b"[" * 100_000 + b"]" * 100_000)
@example(ALERT.encode().replace(b'"score":0.71', b'"score":NaN'))
def test_decode_alert_raises_only_alert_errors(payload: bytes) -> None:
    _only_alert_errors(lambda: Alert.decode(payload))


@fuzz_settings()
@given(documents(REVIEW))
def test_decode_review_raises_only_alert_errors(payload: bytes) -> None:
    _only_alert_errors(lambda: Review.decode(payload))


@fuzz_settings()
@given(documents(ACK))
def test_decode_ack_raises_only_alert_errors(payload: bytes) -> None:
    _only_alert_errors(lambda: Ack.decode(payload))
