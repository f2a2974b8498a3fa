"""The schema files of the alert, the review decision and the ack, and the checks against them.

The JSON Schema files ship inside this package (``alert-v1.schema.json``,
``review-v1.schema.json``, ``ack-v1.schema.json``) so dispatch validates with the very same
documents. The typed values made of them are in :mod:`edge.alerts.model`; alert ids are UUIDv7
(:func:`uuid7`).
"""

from __future__ import annotations

import json
import os
import threading
import time
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from typing import Any, Final

import jsonschema  # type: ignore[import-untyped]

from edge.errors import AlertError
from edge.system.inputs import load_json

ALERT_SCHEMA: Final = "edge.alert.v1"
REVIEW_SCHEMA = "edge.review.v1"
ALERT_SCHEMA_FILE = "alert-v1.schema.json"
REVIEW_SCHEMA_FILE = "review-v1.schema.json"
ACK_SCHEMA = "edge.ack.v1"
ACK_SCHEMA_FILE = "ack-v1.schema.json"
MAX_ACK_IDS = 1000


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


def schema_problem(file_name: str, document: object) -> str | None:
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


def check_utc_time(value: object, what: str) -> None:
    # The schema pattern pins the shape; this catches impossible dates like month 13.
    if isinstance(value, str):
        try:
            datetime.fromisoformat(value)
        except ValueError as exc:
            raise AlertError(f"{what}: {value!r} is not a valid RFC 3339 time") from exc


def validate_alert(alert: object) -> None:
    """Raise :class:`AlertError` unless ``alert`` is a valid schema v1 alert."""
    problem = schema_problem(ALERT_SCHEMA_FILE, alert)
    if problem is not None:
        raise AlertError(f"alert does not match {ALERT_SCHEMA}: {problem}")
    assert isinstance(alert, dict)
    check_utc_time(alert["event_time"], "alert event_time")


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


def parse_json_object(payload: bytes, what: str) -> dict[str, Any]:
    """``payload`` as a JSON object; :class:`AlertError` names ``what`` was not one."""
    try:
        document = load_json(payload)
    except ValueError as exc:  # bad UTF-8, bad JSON, NaN, nested too deeply
        raise AlertError(f"{what} is not UTF-8 JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise AlertError(f"{what} is not a JSON object")
    return document
