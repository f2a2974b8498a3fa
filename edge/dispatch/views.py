"""The console's pages (Jinja2 templates, one small script for the live list; no CDN).

The alert list (``/``) gets new alerts and review changes without a reload over ``/events``
(SSE). An alert page shows the probe crop beside the enrolled face (cropped from the enrolment
photo, which is shown too with that face boxed), the scene the device sent (the matched face
boxed over it, every other face blurred on the device), score against threshold, quality,
device, place, times (the browser's local time, UTC on hover; late arrivals marked), list, the
entry's reason / case reference / legal basis / expiry and its other recent hits, and the
confirm / reject / escalate form. Test alerts carry a banner. Boxes are drawn by the page (SVG
over the picture): the pictures stay as they were sent or imported.
"""

from __future__ import annotations

import secrets
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from edge.config.base import TOPIC_ID_PATTERN
from edge.dispatch.api import ALERT_ID
from edge.dispatch.auth import LoginRefused, Principal
from edge.dispatch.decisions import do_review
from edge.dispatch.deps import LOGIN_CSRF_COOKIE, SESSION_COOKIE, Reader, deps_of, needs
from edge.dispatch.shapes import alert_detail_json, alert_json, device_json, watchlists_json
from edge.errors import NotFoundError

router = APIRouter(include_in_schema=False)
JPEG = "image/jpeg"
LIST_ID = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
ENTRY_ID = r"^[A-Za-z0-9._-]{1,128}$"


def _page(request: Request, name: str, principal: Principal | None, **context: Any) -> Response:
    templates: Jinja2Templates = request.app.state.templates
    return templates.TemplateResponse(
        request, name, {"principal": principal, "page": name.removesuffix(".html"), **context}
    )


def _secure(request: Request) -> bool:
    return deps_of(request).config.tls is not None or request.url.scheme == "https"


# --- login ---------------------------------------------------------------------------------------


@router.get("/login")
async def login_form(request: Request, error: str | None = None) -> Response:
    token = secrets.token_urlsafe(24)
    response = _page(request, "login.html", None, csrf=token, error=error)
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=_secure(request),
        max_age=1800,
    )
    return response


@router.post("/login")
async def login(request: Request) -> Response:
    form = await request.form()
    offered, expected = str(form.get("csrf_token") or ""), request.cookies.get(LOGIN_CSRF_COOKIE)
    if not expected or not secrets.compare_digest(offered, expected):
        return Response("missing or wrong CSRF token: reload the login page", status_code=403)
    name, password = str(form.get("username") or ""), str(form.get("password") or "")
    address = request.client.host if request.client else "-"
    deps = deps_of(request)
    try:
        session, principal = await run_in_threadpool(deps.accounts.login, name, password, address)
    except LoginRefused as exc:
        await run_in_threadpool(
            deps.audit_action, name[:64] or "-", "login_failed", address=address
        )
        token = secrets.token_urlsafe(24)
        response = _page(request, "login.html", None, csrf=token, error=str(exc))
        response.status_code = 429 if exc.limited else 401
        response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict")
        return response
    await run_in_threadpool(deps.audit_action, principal, "login", address=address)
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        session,
        httponly=True,
        samesite="strict",
        secure=_secure(request),
        max_age=int(deps.config.session_ttl_s),
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE)
    return response


@router.post("/logout")
async def logout(
    request: Request, principal: Annotated[Principal, Depends(needs("read", changes=True))]
) -> Response:
    deps = deps_of(request)
    await run_in_threadpool(
        deps.accounts.logout, request.cookies.get(SESSION_COOKIE, ""), principal.name
    )
    await run_in_threadpool(deps.audit_action, principal, "logout")
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


# --- alerts --------------------------------------------------------------------------------------


@router.get("/")
def alert_list(
    request: Request,
    principal: Reader,
    before: Annotated[int | None, Query(ge=1, le=2**62)] = None,
    device: Annotated[str | None, Query(pattern=TOPIC_ID_PATTERN)] = None,
    state: Annotated[str | None, Query(pattern=r"^(new|confirmed|rejected|escalated)$")] = None,
) -> Response:
    deps = deps_of(request)
    size = deps.config.page_size
    rows = deps.store.list_alerts(limit=size, before=before, device=device, state=state)
    alerts = [alert_json(r, deps.config.late_after_s) for r in rows]
    older = alerts[-1]["seq"] if len(alerts) == size else None
    return _page(
        request,
        "alerts.html",
        principal,
        alerts=alerts,
        older=older,
        device=device,
        state=state,
        live=before is None and device is None and state is None,
    )


@router.get("/alerts/{alert_id}")
def alert_page(
    request: Request, alert_id: Annotated[str, Path(pattern=ALERT_ID)], principal: Reader
) -> Response:
    deps = deps_of(request)
    row = deps.store.get_alert(alert_id)
    alert = alert_detail_json(deps, row)
    entry = deps.store.entry(row["watchlist_id"], row["entry_id"])
    hits = [
        alert_json(r, deps.config.late_after_s)
        for r in deps.store.list_alerts(
            entry=(row["watchlist_id"], row["entry_id"]), limit=deps.config.recent_hits + 1
        )
        if r["alert_id"] != alert_id
    ][: deps.config.recent_hits]
    can_decide = principal.can("review") and (
        row["state"] == "new" or principal.can("decide_escalated")
    )
    return _page(
        request,
        "alert.html",
        principal,
        alert=alert,
        entry=entry,
        hits=hits,
        reviews=alert["reviews"],
        can_decide=can_decide,
        margin=row["score"] - row["threshold"],
    )


@router.post("/alerts/{alert_id}/review")
async def review_form(
    request: Request,
    alert_id: Annotated[str, Path(pattern=ALERT_ID)],
    principal: Annotated[Principal, Depends(needs("review", changes=True))],
) -> Response:
    form = await request.form()
    decision = str(form.get("decision") or "")
    note = str(form.get("note") or "")[:2000]
    await run_in_threadpool(do_review, deps_of(request), principal, alert_id, decision, note)
    return RedirectResponse(f"/alerts/{alert_id}", status_code=303)


@router.get("/alerts/{alert_id}/crop.jpg")
def crop(
    request: Request, alert_id: Annotated[str, Path(pattern=ALERT_ID)], principal: Reader
) -> Response:
    jpeg = deps_of(request).store.crop(alert_id)
    if jpeg is None:
        raise NotFoundError(f"alert {alert_id} has no crop")
    return Response(jpeg, media_type=JPEG)


@router.get("/alerts/{alert_id}/context.jpg")
def context(
    request: Request, alert_id: Annotated[str, Path(pattern=ALERT_ID)], principal: Reader
) -> Response:
    jpeg = deps_of(request).store.context_jpeg(alert_id)
    if jpeg is None:
        raise NotFoundError(f"alert {alert_id} has no context frame")
    return Response(jpeg, media_type=JPEG)


@router.get("/entries/{list_id}/{entry_id}/{n}.jpg")
def reference_photo(
    request: Request,
    list_id: Annotated[str, Path(pattern=LIST_ID)],
    entry_id: Annotated[str, Path(pattern=ENTRY_ID)],
    n: Annotated[int, Path(ge=0, le=255)],
    principal: Reader,
) -> Response:
    jpeg = deps_of(request).store.entry_photo(list_id, entry_id, n)
    if jpeg is None:
        raise NotFoundError(f"no reference photo {n} for entry {entry_id} of {list_id}")
    return Response(jpeg, media_type=JPEG)


@router.get("/entries/{list_id}/{entry_id}/{n}/face.jpg")
def enrolled_face(
    request: Request,
    list_id: Annotated[str, Path(pattern=LIST_ID)],
    entry_id: Annotated[str, Path(pattern=ENTRY_ID)],
    n: Annotated[int, Path(ge=0, le=255)],
    principal: Reader,
) -> Response:
    jpeg = deps_of(request).store.entry_photo(list_id, entry_id, n, face=True)
    if jpeg is None:
        raise NotFoundError(f"no enrolled face in reference photo {n} of entry {entry_id}")
    return Response(jpeg, media_type=JPEG)


# --- devices, lists, users, actions ---------------------------------------------------------------


@router.get("/devices")
def devices(request: Request, principal: Reader) -> Response:
    deps = deps_of(request)
    now = time.time()
    rows = [device_json(d, deps.config.online_within_s, now) for d in deps.store.devices()]
    return _page(request, "devices.html", principal, devices=rows)


@router.post("/devices/{device_id}/clear-flag")
async def clear_flag(
    request: Request,
    device_id: Annotated[str, Path(pattern=TOPIC_ID_PATTERN)],
    principal: Annotated[Principal, Depends(needs("clear_flags", changes=True))],
) -> Response:
    deps = deps_of(request)
    await run_in_threadpool(deps.store.clear_audit_flag, device_id, principal.name)
    await run_in_threadpool(deps.audit_action, principal, "audit_flag_cleared", device_id=device_id)
    return RedirectResponse("/devices", status_code=303)


@router.get("/watchlists")
def watchlists(request: Request, principal: Reader) -> Response:
    lists = watchlists_json(deps_of(request), time.time())
    return _page(request, "watchlists.html", principal, lists=lists)


@router.get("/users")
def users(
    request: Request, principal: Annotated[Principal, Depends(needs("manage_users"))]
) -> Response:
    return _page(request, "users.html", principal, users=deps_of(request).accounts.users())


@router.post("/users")
async def add_user(
    request: Request,
    principal: Annotated[Principal, Depends(needs("manage_users", changes=True))],
) -> Response:
    form = await request.form()
    deps = deps_of(request)
    name, role = str(form.get("name") or ""), str(form.get("role") or "")
    await run_in_threadpool(
        deps.accounts.add_user, name, role, str(form.get("password") or ""), by=principal.name
    )
    await run_in_threadpool(deps.audit_action, principal, "user_add", user=name, role=role)
    return RedirectResponse("/users", status_code=303)


@router.get("/actions")
def actions(
    request: Request,
    principal: Annotated[Principal, Depends(needs("read_actions"))],
    before: Annotated[int | None, Query(ge=1, le=2**62)] = None,
) -> Response:
    rows = deps_of(request).store.actions(limit=100, before=before)
    older = rows[-1].id if len(rows) == 100 else None
    return _page(request, "actions.html", principal, actions=rows, older=older)
