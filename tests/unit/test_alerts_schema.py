from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from importlib import resources
from typing import Any

import jsonschema
import pytest
from alerts_helpers import sample_alert

from edge.alerts.model import Ack, Alert, Review
from edge.alerts.schema import (
    ALERT_SCHEMA_FILE,
    REVIEW_SCHEMA_FILE,
    load_schema,
    uuid7,
    uuid7_time,
    validate_alert,
)
from edge.errors import AlertError

JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 100


@pytest.mark.parametrize("file_name", [ALERT_SCHEMA_FILE, REVIEW_SCHEMA_FILE])
def test_schema_files_ship_in_the_package_and_are_valid_json_schema(file_name: str) -> None:
    assert resources.files("edge.alerts").joinpath(file_name).is_file()
    jsonschema.Draft202012Validator.check_schema(load_schema(file_name))


def test_built_alert_is_valid_and_round_trips_through_the_wire_form() -> None:
    event = datetime(2025, 3, 1, 12, 30, 5, 123456, tzinfo=UTC)
    made = sample_alert(
        3, event_time=event, location={"name": "Gate 2", "lat": 51.5, "lon": -0.12}, crop_jpeg=JPEG
    )
    alert = json.loads(made.encode())
    assert alert["event_time"] == "2025-03-01T12:30:05.123Z"
    assert alert["watchlist"] == {"id": "wl-main", "version": "7"}
    assert alert["entry"] == {"id": "e3", "label": "Person 3"}
    assert alert["location"] == {"name": "Gate 2", "lat": 51.5, "lon": -0.12}
    assert base64.b64decode(alert["crop"]["data"]) == JPEG
    assert alert["test"] is False
    assert Alert.decode(made.encode()) == made
    # Wire form is stable (sorted keys) so the same alert always hashes the same.
    assert made.encode() == Alert.decode(made.encode()).encode()


def test_event_time_from_another_zone_is_converted_to_utc() -> None:
    event = datetime(2025, 3, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    assert sample_alert(event_time=event).event_time == "2025-03-01T12:00:00.000Z"


def test_naive_event_time_is_refused() -> None:
    with pytest.raises(AlertError, match="timezone-aware"):
        sample_alert(event_time=datetime(2025, 3, 1, 12, 0))


def test_crop_over_the_cap_is_left_out_but_the_alert_is_kept() -> None:
    alert = sample_alert(crop_jpeg=JPEG + b"\x00" * 2000, crop_max_bytes=1024)
    assert alert.crop is None and "crop" not in alert.document()


def test_crop_that_is_not_a_jpeg_is_refused() -> None:
    with pytest.raises(AlertError, match="not a JPEG"):
        sample_alert(crop_jpeg=b"\x89PNG\r\n\x1a\n")


def test_non_finite_score_is_refused() -> None:
    with pytest.raises(AlertError, match="finite"):
        sample_alert(score=float("nan"))


def _mutated(change: dict[str, Any], drop: str | None = None) -> dict[str, Any]:
    alert: dict[str, Any] = json.loads(sample_alert().encode())
    alert.update(change)
    if drop:
        del alert[drop]
    return alert


@pytest.mark.parametrize(
    ("alert", "complaint"),
    [
        (_mutated({}, drop="threshold"), "threshold"),
        (_mutated({"alert_id": str(uuid.uuid4())}), "alert_id"),
        (_mutated({"event_time": "2025-03-01T12:00:00+02:00"}), "event_time"),
        (_mutated({"event_time": "2025-13-01T12:00:00Z"}), "event_time"),
        (_mutated({"quality": 1.5}), "quality"),
        (_mutated({"device_id": "cam/1"}), "device_id"),
        (_mutated({"schema": "edge.alert.v2"}), "schema"),
        (_mutated({"surprise": 1}), "surprise"),
        (_mutated({"track_id": -1}), "track_id"),
        (_mutated({"crop": {"media_type": "image/png", "data": "/9j/AAAA"}}), "crop"),
        (_mutated({"location": {"lat": 10.0}}), "lon"),
    ],
)
def test_invalid_alerts_are_refused_with_the_field_named(
    alert: dict[str, Any], complaint: str
) -> None:
    with pytest.raises(AlertError) as raised:
        validate_alert(alert)
    assert complaint in str(raised.value)
    assert "\n" not in str(raised.value)


def test_uuid7_has_version_variant_time_and_sorts_in_creation_order() -> None:
    before = datetime.now(UTC)
    ids = [uuid7() for _ in range(5000)]
    parsed = uuid.UUID(ids[0])
    assert parsed.version == 7
    assert parsed.variant == uuid.RFC_4122
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)
    assert abs((uuid7_time(ids[0]) - before).total_seconds()) < 1


def test_uuid7_keeps_order_when_a_millisecond_overflows_its_counter() -> None:
    ids = [uuid7(now_ms=1_700_000_000_000) for _ in range(6000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)


def test_alert_with_explicit_id_must_be_uuid7() -> None:
    with pytest.raises(AlertError, match="alert_id"):
        sample_alert(alert_id="not-a-uuid")


def test_valid_review_is_decoded() -> None:
    alert_id = uuid7()
    review = Review.decode(
        json.dumps(
            {
                "schema": "edge.review.v1",
                "alert_id": alert_id,
                "decision": "reject",
                "by": "op-7",
                "time": "2025-03-01T12:00:01Z",
                "note": "not him",
            }
        ).encode()
    )
    assert (review.alert_id, review.decision, review.by) == (alert_id, "reject", "op-7")


@pytest.mark.parametrize(
    ("payload", "complaint"),
    [
        (b"\xff\xfe", "not UTF-8 JSON"),
        (b"confirm", "not UTF-8 JSON"),
        (b"[1, 2]", "not a JSON object"),
        (json.dumps({"alert_id": "x", "decision": "confirm"}).encode(), "alert_id"),
        (json.dumps({"alert_id": uuid7(), "decision": "maybe"}).encode(), "decision"),
        (
            json.dumps({"alert_id": uuid7(), "decision": "confirm", "time": "yesterday"}).encode(),
            "time",
        ),
    ],
)
def test_malformed_reviews_are_refused_with_a_reason(payload: bytes, complaint: str) -> None:
    with pytest.raises(AlertError) as raised:
        Review.decode(payload)
    assert complaint in str(raised.value)


@pytest.mark.parametrize(
    "payload",
    [b"[" * 100_000 + b"]" * 100_000, b'{"alert_id": ' + b"[" * 50 + b"]" * 50 + b"}"],
    ids=["parser-overflow", "deeper-than-the-limit"],
)
def test_deeply_nested_payloads_are_alert_errors(payload: bytes) -> None:
    for decode in (Alert.decode, Review.decode, Ack.decode):
        with pytest.raises(AlertError, match="nested more than") as caught:
            decode(payload)
        assert "\n" not in str(caught.value)


def test_an_alert_with_nan_or_infinity_is_refused() -> None:
    alert = sample_alert().encode()
    for constant in (b"NaN", b"Infinity", b"-Infinity"):
        bad = alert.replace(b'"score":0.71', b'"score":' + constant)
        assert bad != alert
        with pytest.raises(AlertError, match="not a JSON number"):
            Alert.decode(bad)
