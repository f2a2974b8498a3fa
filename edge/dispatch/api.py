"""The JSON API under ``/api`` (OpenAPI at ``/openapi.json``; bearer token or session).

``GET /api/alerts?since=&limit=`` lists alerts newest first with their review state;
``POST /api/alerts/{alert_id}/review`` records a decision (and sends confirm/reject to the
device); devices, watchlists, users (supervisor) and the action log (supervisor, auditor).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from pydantic import BaseModel, Field

from edge.clock import parse_time, utc_rfc3339
from edge.config.base import TOPIC_ID_PATTERN
from edge.dispatch.auth import Principal
from edge.dispatch.store import TO_DEVICE
from edge.dispatch.web import Deps, Reader, deps_of, needs, utc_text
from edge.errors import TimeFormatError

router = APIRouter(prefix="/api", tags=["dispatch"])

ALERT_ID = r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"
ReviewState = Literal["new", "confirmed", "rejected", "escalated"]
Decision = Literal["confirm", "reject", "escalate"]


class EntryRef(BaseModel):
    id: str = Field(description="The entry's id in its list.")
    label: str
    list_id: str = Field(description="The watchlist the entry belongs to.")


class WatchlistRef(BaseModel):
    id: str
    version: str


class Location(BaseModel):
    name: str | None = None
    lat: float | None = None
    lon: float | None = None


class AlertOut(BaseModel):
    seq: int = Field(description="Arrival order at dispatch; `before=` pages with it.")
    alert_id: str
    device_id: str
    event_time: str = Field(description="When the matched frame was captured (RFC 3339, UTC).")
    received_at: str
    delay_s: float = Field(
        description="How long after its capture the alert arrived (seconds; long when it "
        "waited in the device's outbox, negative when the device's clock is ahead)."
    )
    late: bool = Field(description="It arrived at least `dispatch.late_after_s` after capture.")
    entry: EntryRef
    watchlist: WatchlistRef
    score: float
    threshold: float
    quality: float
    track_id: int
    model_id: str
    location: Location | None
    test: bool
    has_crop: bool = Field(description="It carries the probe face (`crop_url` of the alert).")
    has_context: bool = Field(description="It carries a scene frame (`context` of the alert).")
    state: ReviewState = Field(description="Review state: new, confirmed, rejected, escalated.")
    reviewed_by: str | None
    reviewed_at: str | None


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


# --- shaping rows ---------------------------------------------------------------------------------


def alert_json(row: Mapping[str, Any], late_after_s: float) -> dict[str, Any]:
    location = None
    if row.get("location_name") is not None or row.get("lat") is not None:
        location = {"name": row.get("location_name"), "lat": row.get("lat"), "lon": row.get("lon")}
    delay_s = float(row["received_at"]) - parse_time(row["event_time"]).timestamp()
    return {
        "seq": int(row["seq"]),
        "alert_id": row["alert_id"],
        "device_id": row["device_id"],
        "event_time": row["event_time"],
        "received_at": utc_text(row["received_at"]),
        "delay_s": round(delay_s, 3),
        "late": delay_s >= late_after_s,
        "entry": {
            "id": row["entry_id"],
            "label": row["entry_label"],
            "list_id": row["watchlist_id"],
        },
        "watchlist": {"id": row["watchlist_id"], "version": row["watchlist_version"]},
        "score": row["score"],
        "threshold": row["threshold"],
        "quality": row["quality"],
        "track_id": int(row["track_id"]),
        "model_id": row["model_id"],
        "location": location,
        "test": bool(row["test"]),
        "has_crop": bool(row["has_crop"]),
        "has_context": bool(row.get("has_context")),
        "state": row["state"],
        "reviewed_by": row.get("reviewed_by"),
        "reviewed_at": None if row.get("reviewed_at") is None else utc_text(row["reviewed_at"]),
    }


def alert_detail_json(deps: Deps, row: Mapping[str, Any]) -> dict[str, Any]:
    """One alert with its reviews, its pictures (URLs, sizes, boxes) and the entry's details."""
    alert_id, list_id, entry_id = row["alert_id"], row["watchlist_id"], row["entry_id"]
    entry = deps.store.entry(list_id, entry_id)
    context = deps.store.context(alert_id) if row.get("has_context") else None
    photos = []
    for photo in deps.store.entry_photos(list_id, entry_id) if entry is not None else []:
        url = f"/entries/{list_id}/{entry_id}/{photo['n']}"
        photos.append(
            {
                "n": photo["n"],
                "url": f"{url}.jpg",
                "width": photo["width"],
                "height": photo["height"],
                "face_url": f"{url}/face.jpg" if photo["has_face"] else None,
                "face_box": photo["face_box"],
                "face_note": photo["face_note"],
            }
        )
    return {
        **alert_json(row, deps.config.late_after_s),
        "reviews": [review_json(r) for r in deps.store.reviews_of(alert_id)],
        "crop_url": f"/alerts/{alert_id}/crop.jpg" if row["has_crop"] else None,
        "context": None
        if context is None
        else {"url": f"/alerts/{alert_id}/context.jpg", **context},
        "reference_photos": photos,
        "entry_details": None
        if entry is None
        else {k: entry[k] for k in ("reason", "case_ref", "legal_basis", "expires", "photos")},
    }


def review_json(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": int(row["id"]),
        "alert_id": row["alert_id"],
        "decision": row["decision"],
        "note": row.get("note"),
        "by_user": row["by_user"],
        "at": utc_text(row["at"]),
        "device_id": row["device_id"],
        "sent_to_device": row["decision"] in TO_DEVICE,
    }


def device_json(row: Mapping[str, Any], online_within_s: float, now: float) -> dict[str, Any]:
    beat = row.get("heartbeat_at")
    online = row.get("state") == "online" and beat is not None and now - beat <= online_within_s
    return {
        "device_id": row["device_id"],
        "online": online,
        "state": row.get("state"),
        "state_reason": row.get("state_reason"),
        "last_status": None if row.get("status_at") is None else utc_text(row["status_at"]),
        "last_heartbeat": None if beat is None else utc_text(beat),
        "watchlist_id": row.get("watchlist_id"),
        "watchlist_version": row.get("watchlist_version"),
        "software": row.get("software"),
        "model": row.get("model"),
        "outbox_depth": row.get("outbox_depth"),
        "audit_seq": row.get("audit_seq"),
        "audit_hash": row.get("audit_hash"),
        "audit_problem": row.get("audit_problem"),
    }


def watchlists_json(deps: Deps, now: float) -> list[dict[str, Any]]:
    lists: dict[str, dict[str, Any]] = {
        str(w["list_id"]): {
            "list_id": w["list_id"],
            "version": w["version"],
            "imported_at": utc_text(w["imported_at"]),
            "entry_count": w["entry_count"],
            "valid_until": w["valid_until"],
            "in_force": {},
        }
        for w in deps.store.watchlists()
    }
    for device in deps.store.devices():
        list_id = device.get("watchlist_id")
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
        item["in_force"].setdefault(str(device.get("watchlist_version")), []).append(
            device["device_id"]
        )
    return [lists[k] for k in sorted(lists)]


def do_review(
    deps: Deps, principal: Principal, alert_id: str, decision: str, note: str | None
) -> dict[str, Any]:
    """Store a decision, audit it, and send confirm/reject to the device."""
    note = (note or "").strip() or None
    row = deps.store.review(alert_id, decision, note, principal.name, principal.role)
    deps.audit_action(principal, f"review_{decision}", alert_id=alert_id, note=note)
    if decision in TO_DEVICE and deps.send_review is not None:
        deps.send_review(row)
    return row


def _since(text: str | None) -> str | None:
    if text is None:
        return None
    try:
        return utc_rfc3339(parse_time(text, "since"))
    except TimeFormatError as exc:
        raise HTTPException(422, str(exc)) from exc


# --- routes -------------------------------------------------------------------------------------


@router.get("/alerts", response_model=list[AlertOut], summary="Alerts, newest first")
def list_alerts(
    request: Request,
    principal: Reader,
    since: Annotated[
        str | None,
        Query(max_length=40, description="Only alerts captured at or after this time (RFC 3339)."),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500, description="At most this many (1-500).")] = 50,
    before: Annotated[
        int | None, Query(ge=1, le=2**62, description="Only alerts with a lower seq (paging).")
    ] = None,
    device: Annotated[
        str | None, Query(pattern=TOPIC_ID_PATTERN, description="One device's.")
    ] = None,
    state: Annotated[
        ReviewState | None, Query(description="Only alerts in this review state.")
    ] = None,
    watchlist: Annotated[
        str | None, Query(max_length=128, description="With entry: one entry's.")
    ] = None,
    entry: Annotated[
        str | None, Query(max_length=128, description="Entry id (needs watchlist).")
    ] = None,
) -> list[dict[str, Any]]:
    if (watchlist is None) != (entry is None):
        raise HTTPException(422, "give watchlist and entry together")
    rows = deps_of(request).store.list_alerts(
        limit=limit,
        before=before,
        since=_since(since),
        device=device,
        state=state,
        entry=None if watchlist is None or entry is None else (watchlist, entry),
    )
    return [alert_json(r, deps_of(request).config.late_after_s) for r in rows]


@router.get("/alerts/{alert_id}", response_model=AlertDetail, summary="One alert")
def get_alert(
    request: Request,
    alert_id: Annotated[str, Path(pattern=ALERT_ID)],
    principal: Reader,
) -> dict[str, Any]:
    deps = deps_of(request)
    return alert_detail_json(deps, deps.store.get_alert(alert_id))


@router.post("/alerts/{alert_id}/review", response_model=ReviewOut, summary="Decide an alert")
def review_alert(
    request: Request,
    body: ReviewIn,
    alert_id: Annotated[str, Path(pattern=ALERT_ID)],
    principal: Annotated[Principal, Depends(needs("review", changes=True))],
) -> dict[str, Any]:
    return review_json(do_review(deps_of(request), principal, alert_id, body.decision, body.note))


@router.get("/devices", response_model=list[DeviceOut], summary="Devices and their state")
def devices(request: Request, principal: Reader) -> list[Any]:
    import time

    deps = deps_of(request)
    now = time.time()
    return [device_json(d, deps.config.online_within_s, now) for d in deps.store.devices()]


@router.post("/devices/{device_id}/clear-flag", summary="Clear a device's audit flag")
def clear_flag(
    request: Request,
    device_id: Annotated[str, Path(pattern=TOPIC_ID_PATTERN)],
    principal: Annotated[Principal, Depends(needs("clear_flags", changes=True))],
) -> dict[str, str]:
    deps = deps_of(request)
    deps.store.clear_audit_flag(device_id, principal.name)
    deps.audit_action(principal, "audit_flag_cleared", device_id=device_id)
    return {"device_id": device_id, "audit_problem": "cleared"}


@router.get("/watchlists", response_model=list[WatchlistOut], summary="Lists and where in force")
def watchlists(request: Request, principal: Reader) -> list[Any]:
    import time

    return watchlists_json(deps_of(request), time.time())


@router.get("/users", response_model=list[UserOut], summary="Accounts (supervisor)")
def users(
    request: Request, principal: Annotated[Principal, Depends(needs("manage_users"))]
) -> list[Any]:
    return [
        {**u, "created_at": utc_text(float(str(u["created_at"])))}
        for u in deps_of(request).accounts.users()
    ]


@router.post("/users", response_model=UserOut, status_code=201, summary="Add an account")
def add_user(
    request: Request,
    body: UserIn,
    principal: Annotated[Principal, Depends(needs("manage_users", changes=True))],
) -> dict[str, Any]:
    deps = deps_of(request)
    deps.accounts.add_user(body.name, body.role, body.password, by=principal.name)
    deps.audit_action(principal, "user_add", user=body.name, role=body.role)
    (user,) = [u for u in deps.accounts.users() if u["name"] == body.name]
    return {**user, "created_at": utc_text(float(str(user["created_at"])))}


@router.get("/actions", response_model=list[ActionOut], summary="Operator actions, newest first")
def actions(
    request: Request,
    principal: Annotated[Principal, Depends(needs("read_actions"))],
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    before: Annotated[int | None, Query(ge=1, le=2**62)] = None,
) -> list[Any]:
    rows = deps_of(request).store.actions(limit=limit, before=before)
    return [
        {
            **r,
            "at": utc_text(r["at"]),
            "detail": None if r["detail"] is None else json.loads(r["detail"]),
        }
        for r in rows
    ]
