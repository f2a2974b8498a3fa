"""Alert schema v1: build, validate, encode and decode alerts, review decisions and dispatch's
acknowledgements.

The JSON Schema files ship inside this package (``alert-v1.schema.json``,
``review-v1.schema.json``, ``ack-v1.schema.json``) so dispatch validates with the very same
documents.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from typing import Any, Literal

import jsonschema  # type: ignore[import-untyped]

from edge.clock import utc_rfc3339
from edge.errors import AlertError
from edge.system.inputs import load_json
from edge.types import ContextFrame

log = logging.getLogger(__name__)

ALERT_SCHEMA = "edge.alert.v1"
REVIEW_SCHEMA = "edge.review.v1"
ALERT_SCHEMA_FILE = "alert-v1.schema.json"
REVIEW_SCHEMA_FILE = "review-v1.schema.json"
ACK_SCHEMA = "edge.ack.v1"
ACK_SCHEMA_FILE = "ack-v1.schema.json"
MAX_ACK_IDS = 1000
JPEG_MAGIC = b"\xff\xd8\xff"


def load_schema(file_name: str) -> dict[str, Any]:
    """One of the shipped JSON Schema documents, parsed."""
    text = resources.files("edge.alerts").joinpath(file_name).read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@cache
def _validator(file_name: str) -> Any:
    schema = load_schema(file_name)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def _schema_problem(file_name: str, document: object) -> str | None:
    """The first schema violation as one line, or None if the document is valid."""
    errors = sorted(_validator(file_name).iter_errors(document), key=lambda e: list(e.path))
    if not errors:
        return None
    first = errors[0]
    where = "/".join(str(p) for p in first.absolute_path) or "(top level)"
    message = str(first.message)
    if len(message) > 160:
        message = message[:157] + "..."
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where}: {message}{more}"


def _check_utc_time(value: object, what: str) -> None:
    # The schema pattern pins the shape; this catches impossible dates like month 13.
    if isinstance(value, str):
        try:
            datetime.fromisoformat(value)
        except ValueError as exc:
            raise AlertError(f"{what}: {value!r} is not a valid RFC 3339 time") from exc


def validate_alert(alert: object) -> None:
    """Raise :class:`AlertError` unless ``alert`` is a valid schema v1 alert."""
    problem = _schema_problem(ALERT_SCHEMA_FILE, alert)
    if problem is not None:
        raise AlertError(f"alert does not match {ALERT_SCHEMA}: {problem}")
    assert isinstance(alert, dict)
    _check_utc_time(alert["event_time"], "alert event_time")


# --- UUIDv7 ------------------------------------------------------------------------------------

_uuid_lock = threading.Lock()
_last_ms = 0
_counter = 0
_COUNTER_MAX = 0xFFF


def uuid7(now_ms: int | None = None) -> str:
    """A UUIDv7 (RFC 9562) as lower-case text.

    The 12-bit ``rand_a`` field is a counter within one millisecond (RFC 9562 method 1), so ids
    made by this process sort in the order they were made, even many per millisecond.
    """
    global _last_ms, _counter
    with _uuid_lock:
        ms = time.time_ns() // 1_000_000 if now_ms is None else now_ms
        if ms > _last_ms:
            _last_ms = ms
            # A random start in the lower half leaves room to count up within the millisecond.
            _counter = int.from_bytes(os.urandom(2), "big") & 0x7FF
        else:
            _counter += 1
            if _counter > _COUNTER_MAX:
                # Borrow the next millisecond rather than break the order.
                _last_ms += 1
                _counter = 0
            ms = _last_ms
        counter = _counter
    rand_b = int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1)
    value = (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | counter << 64 | 0b10 << 62 | rand_b
    text = f"{value:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def uuid7_time(alert_id: str) -> datetime:
    """The creation time encoded in a UUIDv7."""
    ms = int(alert_id.replace("-", "")[:12], 16)
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


# --- alerts ------------------------------------------------------------------------------------


def build_alert(
    *,
    device_id: str,
    watchlist_id: str,
    watchlist_version: str | int,
    entry_id: str,
    entry_label: str,
    score: float,
    threshold: float,
    quality: float,
    track_id: int,
    model_id: str,
    event_time: datetime | None = None,
    location: Mapping[str, Any] | None = None,
    crop_jpeg: bytes | None = None,
    crop_max_bytes: int = 32 * 1024,
    context: ContextFrame | None = None,
    context_max_bytes: int = 128 * 1024,
    test: bool = False,
    alert_id: str | None = None,
) -> dict[str, Any]:
    """A schema-valid alert with a fresh UUIDv7 id; raises :class:`AlertError` if invalid.

    ``location`` is the device's configured location (``name``/``lat``/``lon``; ``None`` values
    are left out). A crop larger than ``crop_max_bytes``, or a context frame (the scene, every
    other face already blurred) larger than ``context_max_bytes``, is left out (the alert matters
    more than the picture); one that is not a JPEG is an error.
    """
    if event_time is not None and event_time.tzinfo is None:
        raise AlertError("event time must be timezone-aware (naive datetimes are ambiguous)")
    alert: dict[str, Any] = {
        "schema": ALERT_SCHEMA,
        "alert_id": alert_id or uuid7(),
        "device_id": device_id,
        "event_time": utc_rfc3339(event_time),
        "watchlist": {"id": watchlist_id, "version": str(watchlist_version)},
        "entry": {"id": entry_id, "label": entry_label},
        "score": float(score),
        "threshold": float(threshold),
        "quality": float(quality),
        "track_id": int(track_id),
        "model_id": model_id,
        "test": bool(test),
    }
    if location is not None:
        where = {k: v for k, v in location.items() if v is not None}
        if where:
            alert["location"] = where
    if crop_jpeg is not None and _fits(alert["alert_id"], "crop", crop_jpeg, crop_max_bytes):
        alert["crop"] = {"media_type": "image/jpeg", "data": _base64(crop_jpeg)}
    if context is not None and _fits(
        alert["alert_id"], "context frame", context.jpeg, context_max_bytes
    ):
        alert["context"] = {
            "media_type": "image/jpeg",
            "data": _base64(context.jpeg),
            "width": context.width,
            "height": context.height,
            "box": list(context.box),
        }
    for key in ("score", "threshold", "quality"):
        if alert[key] != alert[key] or alert[key] in (float("inf"), float("-inf")):
            raise AlertError(f"alert {key} must be a finite number, not {alert[key]}")
    validate_alert(alert)
    return alert


def _fits(alert_id: str, what: str, jpeg: bytes, max_bytes: int) -> bool:
    """Whether a picture goes into the alert: an error if it is not a JPEG, False (logged) if it
    is over its cap."""
    if not jpeg.startswith(JPEG_MAGIC):
        raise AlertError(f"alert {what} is not a JPEG (it must start with FF D8 FF)")
    if len(jpeg) > max_bytes:
        log.info(
            "alert %s: %s of %d bytes is over the %d-byte cap, sending the alert without it",
            alert_id,
            what,
            len(jpeg),
            max_bytes,
        )
        return False
    return True


def _base64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def encode_alert(alert: Mapping[str, Any]) -> bytes:
    """The wire form: compact UTF-8 JSON with sorted keys (stable, so it can be hashed)."""
    return json.dumps(
        alert, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def _parse_json_object(payload: bytes, what: str) -> dict[str, Any]:
    try:
        document = load_json(payload)
    except ValueError as exc:  # bad UTF-8, bad JSON, NaN, nested too deeply
        raise AlertError(f"{what} is not UTF-8 JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise AlertError(f"{what} is not a JSON object")
    return document


def decode_alert(payload: bytes) -> dict[str, Any]:
    """Parse and validate an alert received from the wire."""
    alert = _parse_json_object(payload, "alert payload")
    validate_alert(alert)
    return alert


def alert_summary(alert: Mapping[str, Any]) -> dict[str, Any]:
    """The alert without its pictures (crop, context frame): what the audit log keeps of it."""
    return {k: v for k, v in alert.items() if k not in ("crop", "context")}


# --- review decisions --------------------------------------------------------------------------


@dataclass(frozen=True)
class Review:
    """A dispatcher's decision on one alert, received on the review topic."""

    alert_id: str
    decision: Literal["confirm", "reject"]
    by: str | None
    time: str | None
    note: str | None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"alert_id": self.alert_id, "decision": self.decision}
        for key in ("by", "time", "note"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        return out


def decode_review(payload: bytes) -> Review:
    """Parse and validate a review decision; :class:`AlertError` says what is wrong."""
    document = _parse_json_object(payload, "review message")
    problem = _schema_problem(REVIEW_SCHEMA_FILE, document)
    if problem is not None:
        raise AlertError(f"review message does not match {REVIEW_SCHEMA}: {problem}")
    _check_utc_time(document.get("time"), "review time")
    return Review(
        alert_id=document["alert_id"],
        decision=document["decision"],
        by=document.get("by"),
        time=document.get("time"),
        note=document.get("note"),
    )


def encode_review(review: Review) -> bytes:
    return json.dumps(
        {"schema": REVIEW_SCHEMA, **review.as_dict()}, sort_keys=True, separators=(",", ":")
    ).encode("utf-8")


# --- dispatch acknowledgements -----------------------------------------------------------------


@dataclass(frozen=True)
class Ack:
    """Dispatch stored these alerts; the device may forget them."""

    alert_ids: tuple[str, ...]
    by: str | None = None
    time: str | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"alert_ids": list(self.alert_ids)}
        if self.by is not None:
            out["by"] = self.by
        if self.time is not None:
            out["time"] = self.time
        return out


def encode_ack(ack: Ack) -> bytes:
    return json.dumps(
        {"schema": ACK_SCHEMA, **ack.as_dict()}, sort_keys=True, separators=(",", ":")
    ).encode("utf-8")


def decode_ack(payload: bytes) -> Ack:
    """Parse and validate an acknowledgement; :class:`AlertError` says what is wrong."""
    document = _parse_json_object(payload, "ack message")
    problem = _schema_problem(ACK_SCHEMA_FILE, document)
    if problem is not None:
        raise AlertError(f"ack message does not match {ACK_SCHEMA}: {problem}")
    return Ack(tuple(document["alert_ids"]), document.get("by"), document.get("time"))
