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
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from edge import __version__
from edge.dispatch import api, views
from edge.dispatch.deps import (
    HERE,
    Current,
    Deps,
    LoginRequired,
    Reader,
    is_api,
    make_templates,
)
from edge.dispatch.shapes import alert_json
from edge.errors import DispatchError, NotAllowedError, NotFoundError

log = logging.getLogger(__name__)

CSP = (
    "default-src 'self'; img-src 'self'; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)


def create_app(deps: Deps) -> FastAPI:
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
            if is_api(request) or request.method != "GET":
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
    feed = deps.feed
    if feed is None:
        yield "retry: 5000\n\n"
        return
    loop = asyncio.get_running_loop()
    events: asyncio.Queue[tuple[str, Mapping[str, object]]] = asyncio.Queue(maxsize=2000)

    def put(item: tuple[str, Mapping[str, object]]) -> None:
        if not events.full():  # a stalled browser loses events, never blocks the feed
            events.put_nowait(item)

    def listener(kind: str, data: Mapping[str, object]) -> None:
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
