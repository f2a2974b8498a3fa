"""Time: the one source of 'now' and the two text forms of a UTC instant.

- :func:`format_time`: seconds, ``2025-01-31T12:00:00Z``: watchlist manifests, entries, sync
  reports (signed documents compare these strings, so the form never varies).
- :func:`utc_rfc3339`: milliseconds, ``2025-01-31T12:00:00.123Z``: alerts, reviews, status,
  heartbeats and audit records.
"""

from __future__ import annotations

from datetime import UTC, datetime

from edge.errors import TimeFormatError


def utc_now() -> datetime:
    return datetime.now(UTC)


def format_time(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def utc_rfc3339(moment: datetime | None = None) -> str:
    """``moment`` (default now, timezone-aware) as RFC 3339 in UTC with milliseconds and 'Z'."""
    if moment is None:
        moment = utc_now()
    elif moment.tzinfo is None:
        raise TimeFormatError("a time must be timezone-aware (naive datetimes are ambiguous)")
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(text: str, what: str = "time") -> datetime:
    """An ISO 8601 date or date-time; naive values are UTC; a date alone means 00:00 UTC."""
    value = text.strip()
    try:
        if value.endswith(("Z", "z")):
            value = value[:-1] + "+00:00"
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise TimeFormatError(f"{what} {text!r} is not an ISO 8601 date or date-time") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
