"""The dispatch web app: ``create_app(deps)`` serves the console (:mod:`edge.dispatch.views`) and
the API (:mod:`edge.dispatch.api`) from one FastAPI app.

- Nothing answers without a login (session cookie) or an API token (``Authorization: Bearer``),
  except the login form and the static files (CSS and the one small script). Pages redirect to
  the login; the API answers 401.
- The session cookie is HttpOnly and SameSite=Strict (Secure under TLS). Every state-changing
  request made with it must carry the session's CSRF token (form field ``csrf_token`` or header
  ``X-CSRF-Token``), else 403. The login form has its own (double-submit cookie).
- Roles are checked per route (:func:`needs`); a refused right is 403.
- Responses carry a strict Content-Security-Policy (no inline script, nothing from elsewhere:
  the centre's network is offline), ``nosniff``, ``no-referrer`` and ``no-store``.
- ``/events`` is the live feed (server-sent events) behind the alert list.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import jinja2
from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from edge import __version__
from edge.audit import AuditLog
from edge.config.dispatch import DispatchConfig
from edge.dispatch.auth import Accounts, Principal, csrf_ok
from edge.dispatch.feed import Feed
from edge.dispatch.store import Store
from edge.errors import DispatchError, NotAllowedError, NotFoundError

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
SESSION_COOKIE = "edge_session"
LOGIN_CSRF_COOKIE = "edge_login_csrf"
CSP = (
    "default-src 'self'; img-src 'self'; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)


@dataclass
class Deps:
    """What the app works with; ``send_review`` hands a stored review to the MQTT side."""

    store: Store
    accounts: Accounts
    config: DispatchConfig
    audit: AuditLog | None = None
    feed: Feed | None = None
    send_review: Callable[[dict[str, Any]], None] | None = None

    def audit_action(self, principal: Principal | str, kind: str, **data: Any) -> None:
        """An operator action, to the centre's hash-chained audit log."""
        if self.audit is None:
            return
        who = principal if isinstance(principal, str) else principal.name
        self.audit.append_or_log([(kind, {"by": who, **data})])


class LoginRequired(Exception):
    def __init__(self, api: bool) -> None:
        self.api = api


def deps_of(request: Request) -> Deps:
    deps: Deps = request.app.state.deps
    return deps


def _is_api(request: Request) -> bool:
    path = request.url.path
    return path.startswith("/api/") or path in ("/openapi.json", "/events")


def _identify(request: Request) -> Principal:
    deps = deps_of(request)
    header = request.headers.get("authorization")
    if header:
        scheme, _, token = header.partition(" ")
        principal = None
        if scheme.lower() == "bearer":
            principal = deps.accounts.authenticate_token(token.strip())
        if principal is None:
            raise LoginRequired(api=True)
        return principal
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        principal = deps.accounts.session(cookie)
        if principal is not None:
            return principal
    raise LoginRequired(api=_is_api(request))


async def current(request: Request) -> Principal:
    """Who is asking (session or token), or LoginRequired."""
    cached: Principal | None = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    principal = await run_in_threadpool(_identify, request)
    request.state.principal = principal
    return principal


Current = Annotated[Principal, Depends(current)]


def needs(right: str, *, changes: bool = False) -> Callable[..., Awaitable[Principal]]:
    """A dependency: the principal, who must have ``right``; ``changes`` also checks CSRF."""

    async def check(request: Request, principal: Current) -> Principal:
        if changes:
            offered = request.headers.get("x-csrf-token")
            if offered is None and request.headers.get("content-type", "").startswith(
                ("application/x-www-form-urlencoded", "multipart/form-data")
            ):
                offered = str((await request.form()).get("csrf_token") or "") or None
            if not csrf_ok(principal, offered):
                raise NotAllowedError("missing or wrong CSRF token: reload the page")
        if not principal.can(right):
            raise NotAllowedError(f"a {principal.role} may not do this ({right})")
        return principal

    return check


Reader = Annotated[Principal, Depends(needs("read"))]


def utc_text(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    moment = datetime.fromtimestamp(float(seconds), tz=UTC)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def duration_text(seconds: float) -> str:
    """How long, for a person: '0.4 s', '45 s', '15 min', '2 h 5 min', '3 d 4 h'."""
    sign, seconds = ("-" if seconds < 0 else ""), abs(float(seconds))
    if seconds < 10:
        return f"{sign}{seconds:.1f} s"
    minutes, hours = round(seconds) // 60, round(seconds) // 3600
    if minutes == 0:
        return f"{sign}{round(seconds)} s"
    if hours == 0:
        return f"{sign}{minutes} min"
    if hours < 24:
        return f"{sign}{hours} h {minutes % 60} min"
    return f"{sign}{hours // 24} d {hours % 24} h"


def make_templates() -> Jinja2Templates:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(HERE / "templates")),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["utc"] = utc_text
    env.filters["duration"] = duration_text
    env.globals["version"] = __version__
    return Jinja2Templates(env=env)


def create_app(deps: Deps) -> FastAPI:
    from edge.dispatch import api, views

    app = FastAPI(
        title="edge dispatch",
        version=__version__,
        description="The dispatch centre's API: alerts, reviews, devices, watchlists. Every "
        "endpoint needs `Authorization: Bearer <token>` (`edge dispatch tokens create`) or a "
        "console session.",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.deps = deps
    app.state.templates = make_templates()

    @app.middleware("http")
    async def security_headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["X-Frame-Options"] = "DENY"
        if not request.url.path.startswith("/static/"):
            response.headers["Cache-Control"] = "no-store"
        return response

    @app.exception_handler(LoginRequired)
    async def login_required(request: Request, exc: LoginRequired) -> Response:
        if exc.api:
            return JSONResponse(
                {"detail": "log in or send a bearer token"},
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        return RedirectResponse("/login", status_code=303)

    def _error(status: int) -> Callable[[Request, Exception], Awaitable[Response]]:
        async def handler(request: Request, exc: Exception) -> Response:
            if _is_api(request) or request.method != "GET":
                return JSONResponse({"detail": str(exc)}, status_code=status)
            templates: Jinja2Templates = request.app.state.templates
            return templates.TemplateResponse(
                request,
                "error.html",
                {"status": status, "message": str(exc), "principal": None},
                status_code=status,
            )

        return handler

    app.add_exception_handler(NotAllowedError, _error(403))
    app.add_exception_handler(NotFoundError, _error(404))
    app.add_exception_handler(DispatchError, _error(400))

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi(principal: Current) -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/events", include_in_schema=False)
    async def events(request: Request, principal: Reader) -> Response:
        return StreamingResponse(
            _event_stream(request, deps),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    app.include_router(views.router)
    app.include_router(api.router)
    return app


async def _event_stream(request: Request, deps: Deps) -> AsyncIterator[str]:
    from edge.dispatch.api import alert_json

    feed = deps.feed
    if feed is None:
        yield "retry: 5000\n\n"
        return
    loop = asyncio.get_running_loop()
    events: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue(maxsize=2000)

    def put(item: tuple[str, dict[str, Any]]) -> None:
        if not events.full():  # a stalled browser loses events, never blocks the feed
            events.put_nowait(item)

    def listener(kind: str, data: dict[str, Any]) -> None:
        loop.call_soon_threadsafe(put, (kind, data))

    key = feed.subscribe(listener)
    try:
        # Sent once subscribed: from here on the page misses no alert (it shows "live").
        yield "retry: 2000\nevent: ready\ndata: {}\n\n"
        idle = 0.0
        while not feed.stopping:
            try:
                kind, data = await asyncio.wait_for(events.get(), 1.0)
            except TimeoutError:
                idle += 1.0
                if await request.is_disconnected():
                    break
                if idle >= 15.0:
                    idle = 0.0
                    yield ": keepalive\n\n"
                continue
            body = alert_json(data, deps.config.late_after_s) if kind == "alert" else data
            yield f"event: {kind}\ndata: {json.dumps(body, separators=(',', ':'))}\n\n"
    finally:
        feed.unsubscribe(key)
