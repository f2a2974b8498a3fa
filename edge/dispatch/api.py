"""The JSON API under ``/api`` (OpenAPI at ``/openapi.json``; bearer token or session).

``GET /api/alerts?since=&limit=`` lists alerts newest first with their review state;
``POST /api/alerts/{alert_id}/review`` records a decision (and sends confirm/reject to the
device); devices, watchlists, users (supervisor) and the action log (supervisor, auditor).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request

from edge.alerts.model import JsonObject
from edge.clock import parse_time, utc_rfc3339
from edge.config.base import TOPIC_ID_PATTERN
from edge.dispatch.auth import Principal
from edge.dispatch.decisions import do_review
from edge.dispatch.deps import Reader, deps_of, needs, utc_text
from edge.dispatch.shapes import (
    ActionOut,
    AlertDetail,
    AlertOut,
    DeviceOut,
    ReviewIn,
    ReviewOut,
    ReviewState,
    UserIn,
    UserOut,
    WatchlistOut,
    alert_detail_json,
    alert_json,
    device_json,
    review_json,
    watchlists_json,
)
from edge.errors import TimeFormatError

router = APIRouter(prefix="/api", tags=["dispatch"])

ALERT_ID = r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"


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
) -> list[JsonObject]:
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
) -> JsonObject:
    deps = deps_of(request)
    return alert_detail_json(deps, deps.store.get_alert(alert_id))


@router.post("/alerts/{alert_id}/review", response_model=ReviewOut, summary="Decide an alert")
def review_alert(
    request: Request,
    body: ReviewIn,
    alert_id: Annotated[str, Path(pattern=ALERT_ID)],
    principal: Annotated[Principal, Depends(needs("review", changes=True))],
) -> JsonObject:
    return review_json(do_review(deps_of(request), principal, alert_id, body.decision, body.note))


@router.get("/devices", response_model=list[DeviceOut], summary="Devices and their state")
def devices(request: Request, principal: Reader) -> list[Any]:
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
) -> JsonObject:
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
            **asdict(r),
            "at": utc_text(r.at),
            "detail": None if r.detail is None else json.loads(r.detail),
        }
        for r in rows
    ]
