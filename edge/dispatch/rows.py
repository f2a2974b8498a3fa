"""The rows the dispatch store hands out, typed (the alert rows stay mappings: their columns
are derived from the alert model, see :mod:`edge.dispatch.tables`).

Each class's fields are the columns its query selects, in table order, so a row is built with
``Row(**mapping)`` and a renamed or added column fails loudly instead of going unseen.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ReviewRow:
    """A decision on an alert (table ``reviews``)."""

    id: int
    alert_id: str
    decision: str
    note: str | None
    by_user: str
    at: float
    device_id: str
    sent_at: float | None  # published to the device and acknowledged by the broker


@dataclass(frozen=True)
class ReviewMark:
    """Which alert a review was about: what the live feed needs to announce it."""

    id: int
    alert_id: str


@dataclass(frozen=True)
class ContextFrame:
    """The size of an alert's context picture and the matched face's box in its pixels."""

    width: int
    height: int
    box: list[float]


@dataclass(frozen=True)
class DeviceRow:
    """A device as the console lists it (table ``devices`` without the raw status/heartbeat)."""

    device_id: str
    state: str | None
    state_reason: str | None
    status_at: float | None
    heartbeat_at: float | None
    watchlist_id: str | None
    watchlist_version: str | None
    software: str | None
    model: str | None
    outbox_depth: int | None
    audit_seq: int | None
    audit_hash: str | None
    audit_problem: str | None
    audit_problem_at: float | None


@dataclass(frozen=True)
class ActionRow:
    """An operator action (table ``actions``); ``detail`` is its JSON text, or None."""

    id: int
    at: float
    user_name: str
    kind: str
    target: str | None
    detail: str | None


@dataclass(frozen=True)
class EntryRow:
    """A watchlist entry's details from ``import-list`` (table ``entries``)."""

    list_id: str
    entry_id: str
    label: str
    added: str | None
    expires: str | None
    reason: str | None
    legal_basis: str | None
    case_ref: str | None
    photos: int
    version: int  # the list version that last carried it


@dataclass(frozen=True)
class ReferencePhotoInfo:
    """An entry's reference photo without its JPEGs: the thumbnail's size (None when it could
    not be read), whether an enrolled face was found, its box in the thumbnail and why not."""

    n: int
    width: int | None
    height: int | None
    has_face: bool
    face_box: list[float] | None
    face_note: str | None


@dataclass(frozen=True)
class ListRow:
    """An imported watchlist (table ``watchlists`` without its manifest)."""

    list_id: str
    version: int
    imported_at: float
    imported_by: str
    valid_until: str
    entry_count: int
