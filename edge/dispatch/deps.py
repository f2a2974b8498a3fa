"""What the dispatch app's routes share: the :class:`Deps` they work with (store, accounts,
config, audit, feed), who is asking (session or token) and what they may do, and the templates.

The console (:mod:`edge.dispatch.views`), the API (:mod:`edge.dispatch.api`) and the app
(:mod:`edge.dispatch.web`) import this; it imports none of them.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import jinja2
from fastapi import Depends, Request
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from edge import __version__
from edge.audit import AuditLog
from edge.config.dispatch import DispatchConfig
from edge.dispatch.auth import Accounts, Principal, csrf_ok
from edge.dispatch.feed import Feed
from edge.dispatch.rows import ReviewRow
from edge.dispatch.store import Store
from edge.errors import NotAllowedError

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
SESSION_COOKIE = "edge_session"
LOGIN_CSRF_COOKIE = "edge_login_csrf"


@dataclass
class Deps:
    """What the app works with; ``send_review`` hands a stored review to the MQTT side."""

    store: Store
    accounts: Accounts
    config: DispatchConfig
    audit: AuditLog | None = None
    feed: Feed | None = None
    send_review: Callable[[ReviewRow], None] | None = None

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


def is_api(request: Request) -> bool:
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
    raise LoginRequired(api=is_api(request))


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
