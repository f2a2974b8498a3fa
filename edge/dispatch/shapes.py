"""The dispatch API's and console's response shapes, and the functions that shape stored rows
into them. An alert's own fields come from the model (:class:`edge.alerts.model.Alert`); only
what dispatch adds (arrival, review state, URLs) is named here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, Field, create_model
from pydantic.fields import FieldInfo

from edge.alerts import model
from edge.alerts.model import Alert, JsonObject
from edge.clock import parse_time
from edge.dispatch.alert_rows import NOT_STORED, alert_parts
from edge.dispatch.deps import Deps, utc_text
from edge.dispatch.rows import DeviceRow, ReviewRow
from edge.dispatch.store import TO_DEVICE

ReviewState = Literal["new", "confirmed", "rejected", "escalated"]
Decision = Literal["confirm", "reject", "escalate"]
T = TypeVar("T")


class EntryRef(model.EntryRef):
    """The alert's entry, and the list it is in (the OpenAPI name it always had)."""

    list_id: str = Field(description="The watchlist the entry belongs to.")


def _alert_fields() -> dict[str, tuple[Any, FieldInfo]]:
    """The alert's own fields as the API shows them (the pictures are URLs of their own), each
    required: a stored alert always says it, if only as null."""
    fields: dict[str, tuple[Any, FieldInfo]] = {}
    for name, info in Alert.model_fields.items():
        if name in NOT_STORED:
            continue
        annotation = EntryRef if name == "entry" else info.annotation
        fields[name] = (annotation, Field(description=info.description))
    return fields


def _after_event_time(alert_fields: Mapping[str, T], arrival: Mapping[str, T]) -> dict[str, T]:
    # The arrival fields follow event_time: the order the API has always listed them in.
    out: dict[str, T] = {}
    for name, field in alert_fields.items():
        out[name] = field
        if name == "event_time":
            out.update(arrival)
    return out


# create_model takes each field as a keyword: a plain mapping of them, typed as it expects.
_ALERT_OUT_FIELDS: dict[str, Any] = _after_event_time(
    _alert_fields(),
    {
        "received_at": (str, ...),
        "delay_s": (
            float,
            Field(
                description="How long after its capture the alert arrived (seconds; long "
                "when it waited in the device's outbox, negative when the device's clock is "
                "ahead)."
            ),
        ),
        "late": (
            bool,
            Field(description="It arrived at least `dispatch.late_after_s` after capture."),
        ),
    },
)

AlertOut = create_model(
    "AlertOut",
    seq=(int, Field(description="Arrival order at dispatch; `before=` pages with it.")),
    **_ALERT_OUT_FIELDS,
    has_crop=(bool, Field(description="It carries the probe face (`crop_url` of the alert).")),
    has_context=(bool, Field(description="It carries a scene frame (`context` of the alert).")),
    state=(ReviewState, Field(description="Review state: new, confirmed, rejected, escalated.")),
    reviewed_by=(str | None, ...),
    reviewed_at=(str | None, ...),
)


class ReviewIn(BaseModel):
    decision: Decision = Field(
        description="'confirm' (it is the person), 'reject' (not this person) or 'escalate' "
        "(to a supervisor; stays at the centre)."
    )
    note: str | None = Field(None, max_length=2000)


class ReviewOut(BaseModel):
    id: int
    alert_id: str
    decision: Decision
    note: str | None
    by_user: str
    at: str
    device_id: str
    sent_to_device: bool = Field(description="confirm/reject are sent to the device.")


class ContextOut(BaseModel):
    url: str = Field(description="The scene JPEG, exactly as the device sent it.")
    width: int
    height: int
    box: list[int] = Field(
        description="The matched face in the JPEG's pixels, [x1, y1, x2, y2]; every other face "
        "was blurred on the device."
    )


class ReferencePhotoOut(BaseModel):
    n: int
    url: str = Field(description="The enrolment photo, as a thumbnail.")
    width: int | None = Field(
        description="The thumbnail's size (None: imported before edge recorded it)."
    )
    height: int | None
    face_url: str | None = Field(
        description="The enrolled face (the face of this photo the template was made of), "
        "cropped with a margin; None when the list's details do not say which face it was."
    )
    face_box: list[int] | None = Field(description="That face's box in the thumbnail.")
    face_note: str | None = Field(description="Why there is no enrolled face crop.")


class AlertDetail(AlertOut):
    reviews: list[ReviewOut]
    crop_url: str | None = Field(description="The probe face as the device sent it.")
    context: ContextOut | None = Field(description="The scene around the face, if sent.")
    reference_photos: list[ReferencePhotoOut] = Field(
        description="The entry's enrolment photos and enrolled faces (from `import-list`)."
    )
    entry_details: dict[str, Any] | None = Field(
        description="reason, case_ref, legal_basis, expires, photos (from `import-list`)."
    )


class DeviceOut(BaseModel):
    device_id: str
    online: bool
    state: str | None
    state_reason: str | None
    last_status: str | None
    last_heartbeat: str | None
    watchlist_id: str | None
    watchlist_version: str | None
    software: str | None
    model: str | None
    outbox_depth: int | None
    audit_seq: int | None
    audit_hash: str | None
    audit_problem: str | None


class WatchlistOut(BaseModel):
    list_id: str
    version: int | None = Field(
        description="The version imported at dispatch (None: not imported)."
    )
    imported_at: str | None
    entry_count: int | None
    valid_until: str | None
    in_force: dict[str, list[str]] = Field(description="Version -> devices that run it.")


class UserIn(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    role: Literal["operator", "supervisor", "auditor"]
    password: str = Field(min_length=10, max_length=200)


class UserOut(BaseModel):
    name: str
    role: str
    created_at: str
    disabled: bool


class ActionOut(BaseModel):
    id: int
    at: str
    user_name: str
    kind: str
    target: str | None
    detail: Any


def alert_json(row: Mapping[str, Any], late_after_s: float) -> JsonObject:
    """A stored alert as the API and the console show it (:data:`AlertOut`)."""
    delay_s = float(str(row["received_at"])) - parse_time(str(row["event_time"])).timestamp()
    parts = alert_parts(row)
    entry = parts["entry"]
    assert isinstance(entry, dict)
    entry["list_id"] = row["watchlist_id"]
    arrival = {
        "received_at": utc_text(row["received_at"]),
        "delay_s": round(delay_s, 3),
        "late": delay_s >= late_after_s,
    }
    return {
        "seq": int(row["seq"]),
        **_after_event_time(parts, arrival),
        "has_crop": bool(row["has_crop"]),
        "has_context": bool(row.get("has_context")),
        "state": row["state"],
        "reviewed_by": row.get("reviewed_by"),
        "reviewed_at": None if row.get("reviewed_at") is None else utc_text(row["reviewed_at"]),
    }


def alert_detail_json(deps: Deps, row: Mapping[str, Any]) -> JsonObject:
    """One alert with its reviews, its pictures (URLs, sizes, boxes) and the entry's details."""
    alert_id, list_id, entry_id = row["alert_id"], row["watchlist_id"], row["entry_id"]
    entry = deps.store.entry(list_id, entry_id)
    context = deps.store.context(alert_id) if row.get("has_context") else None
    photos = []
    for photo in deps.store.entry_photos(list_id, entry_id) if entry is not None else []:
        url = f"/entries/{list_id}/{entry_id}/{photo.n}"
        photos.append(
            {
                "n": photo.n,
                "url": f"{url}.jpg",
                "width": photo.width,
                "height": photo.height,
                "face_url": f"{url}/face.jpg" if photo.has_face else None,
                "face_box": photo.face_box,
                "face_note": photo.face_note,
            }
        )
    return {
        **alert_json(row, deps.config.late_after_s),
        "reviews": [review_json(r) for r in deps.store.reviews_of(alert_id)],
        "crop_url": f"/alerts/{alert_id}/crop.jpg" if row["has_crop"] else None,
        "context": None
        if context is None
        else {"url": f"/alerts/{alert_id}/context.jpg", **asdict(context)},
        "reference_photos": photos,
        "entry_details": None
        if entry is None
        else {
            "reason": entry.reason,
            "case_ref": entry.case_ref,
            "legal_basis": entry.legal_basis,
            "expires": entry.expires,
            "photos": entry.photos,
        },
    }


def review_json(row: ReviewRow) -> JsonObject:
    return {
        "id": row.id,
        "alert_id": row.alert_id,
        "decision": row.decision,
        "note": row.note,
        "by_user": row.by_user,
        "at": utc_text(row.at),
        "device_id": row.device_id,
        "sent_to_device": row.decision in TO_DEVICE,
    }


def device_json(row: DeviceRow, online_within_s: float, now: float) -> JsonObject:
    beat = row.heartbeat_at
    online = row.state == "online" and beat is not None and now - beat <= online_within_s
    return {
        "device_id": row.device_id,
        "online": online,
        "state": row.state,
        "state_reason": row.state_reason,
        "last_status": None if row.status_at is None else utc_text(row.status_at),
        "last_heartbeat": None if beat is None else utc_text(beat),
        "watchlist_id": row.watchlist_id,
        "watchlist_version": row.watchlist_version,
        "software": row.software,
        "model": row.model,
        "outbox_depth": row.outbox_depth,
        "audit_seq": row.audit_seq,
        "audit_hash": row.audit_hash,
        "audit_problem": row.audit_problem,
    }


def watchlists_json(deps: Deps, now: float) -> list[JsonObject]:
    lists: dict[str, dict[str, Any]] = {
        w.list_id: {
            "list_id": w.list_id,
            "version": w.version,
            "imported_at": utc_text(w.imported_at),
            "entry_count": w.entry_count,
            "valid_until": w.valid_until,
            "in_force": {},
        }
        for w in deps.store.watchlists()
    }
    for device in deps.store.devices():
        list_id = device.watchlist_id
        if not list_id:
            continue
        item = lists.setdefault(
            str(list_id),
            {
                "list_id": list_id,
                "version": None,
                "imported_at": None,
                "entry_count": None,
                "valid_until": None,
                "in_force": {},
            },
        )
        item["in_force"].setdefault(str(device.watchlist_version), []).append(device.device_id)
    return [lists[k] for k in sorted(lists)]
