"""Fuzzing the alert, review and ack readers (what arrives from MQTT): only AlertError."""

from __future__ import annotations

import json

from alerts_helpers import sample_alert
from fuzz_helpers import documents, fuzz_settings, only_edge_errors
from hypothesis import example, given

from edge.alerts.schema import (
    Ack,
    Review,
    decode_ack,
    decode_alert,
    decode_review,
    encode_ack,
    encode_alert,
    encode_review,
)
from edge.errors import AlertError

ALERT = sample_alert(crop_jpeg=b"\xff\xd8\xff\xe0" + bytes(40))
REVIEW = json.loads(
    encode_review(
        Review(
            "019a7c3e-5b2d-7c41-9f0e-3d2b8a1c4e5f",
            "reject",
            "op-7",
            "2025-03-01T12:31:00Z",
            "not him",
        )
    )
)
ACK = json.loads(
    encode_ack(Ack(("019a7c3e-5b2d-7c41-9f0e-3d2b8a1c4e5f",), "dispatch-1", "2025-03-01T12:31:00Z"))
)


def _only_alert_errors(call: object) -> None:
    error = only_edge_errors(call)  # type: ignore[arg-type]
    assert error is None or isinstance(error, AlertError), repr(error)


def test_the_valid_documents_decode() -> None:
    assert decode_alert(encode_alert(ALERT)) == ALERT
    assert decode_review(json.dumps(REVIEW).encode()).decision == "reject"
    assert decode_ack(json.dumps(ACK).encode()).alert_ids == tuple(ACK["alert_ids"])


@fuzz_settings()
@given(documents(ALERT))
@example(b"[" * 100_000 + b"]" * 100_000)
@example(encode_alert(ALERT).replace(b'"score":0.71', b'"score":NaN'))
def test_decode_alert_raises_only_alert_errors(payload: bytes) -> None:
    _only_alert_errors(lambda: decode_alert(payload))


@fuzz_settings()
@given(documents(REVIEW))
def test_decode_review_raises_only_alert_errors(payload: bytes) -> None:
    _only_alert_errors(lambda: decode_review(payload))


@fuzz_settings()
@given(documents(ACK))
def test_decode_ack_raises_only_alert_errors(payload: bytes) -> None:
    _only_alert_errors(lambda: decode_ack(payload))
