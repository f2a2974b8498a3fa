"""Accounts, roles, passwords, sessions, API tokens and the login rate limit.

Roles: an **operator** reviews alerts; a **supervisor** also decides escalated alerts, manages
users and clears device flags; an **auditor** reads everything (the action log too) and changes
nothing. Passwords are hashed with argon2id (argon2-cffi). A console session and an API token
are random strings the browser or client holds; the database keeps only their sha256, so a
copy of the database lets nobody in. Each session carries its own CSRF token, which every
state-changing request made with the session cookie must echo (form field or header).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import delete, func, insert, select, update

from edge.config.dispatch import DispatchConfig
from edge.dispatch import tables as t
from edge.dispatch.store import Store
from edge.errors import DispatchError, NotFoundError

USER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
MIN_PASSWORD = 10
TOKEN_PREFIX = "edt_"

RIGHTS: dict[str, frozenset[str]] = {
    "operator": frozenset({"read", "review"}),
    "supervisor": frozenset(
        {"read", "review", "decide_escalated", "manage_users", "clear_flags", "read_actions"}
    ),
    "auditor": frozenset({"read", "read_actions"}),
}


class LoginRefused(DispatchError):
    """Wrong name or password (``limited`` False) or too many failures (``limited`` True)."""

    def __init__(self, message: str, *, limited: bool) -> None:
        super().__init__(message)
        self.limited = limited


@dataclass(frozen=True)
class Principal:
    """Who makes a request, and how: ``via`` 'session' (cookie, needs CSRF) or 'token'."""

    user_id: int
    name: str
    role: str
    via: str
    csrf: str | None = None

    def can(self, right: str) -> bool:
        return right in RIGHTS.get(self.role, frozenset())


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


class Accounts:
    """Users, tokens and sessions in the dispatch database."""

    def __init__(self, store: Store, config: DispatchConfig | None = None) -> None:
        self.store = store
        self.config = config or DispatchConfig()
        self.hasher = PasswordHasher()
        # Verified for unknown names too, so a wrong name takes as long as a wrong password.
        self._dummy = self.hasher.hash(secrets.token_hex(16))

    # --- users -----------------------------------------------------------------------------------

    def add_user(self, name: str, role: str, password: str, *, by: str) -> None:
        if not USER_NAME.match(name):
            raise DispatchError(
                f"user name {name[:40]!r}: 1-64 letters, digits, '.', '_', '@' or '-'"
            )
        if role not in RIGHTS:
            raise DispatchError(f"role {role!r}: use one of {', '.join(RIGHTS)}")
        if len(password) < MIN_PASSWORD:
            raise DispatchError(f"the password must have at least {MIN_PASSWORD} characters")
        with self.store.tx(f"add user {name}") as conn:
            exists = conn.execute(select(t.users.c.id).where(t.users.c.name == name)).first()
            if exists is not None:
                raise DispatchError(f"user {name} exists already")
            conn.execute(
                insert(t.users).values(
                    name=name,
                    role=role,
                    password_hash=self.hasher.hash(password),
                    created_at=time.time(),
                    disabled=False,
                )
            )
            self.store.record_action(conn, by, "user_add", name, {"role": role})

    def users(self) -> list[dict[str, object]]:
        with self.store.tx("read users") as conn:
            rows = conn.execute(
                select(
                    t.users.c.id,
                    t.users.c.name,
                    t.users.c.role,
                    t.users.c.created_at,
                    t.users.c.disabled,
                ).order_by(t.users.c.name)
            ).mappings()
            return [dict(r) for r in rows]

    def user_count(self) -> int:
        with self.store.tx("count users") as conn:
            return int(conn.execute(select(func.count()).select_from(t.users)).scalar_one())

    # --- API tokens ------------------------------------------------------------------------------

    def create_token(self, name: str, *, label: str | None = None, by: str) -> str:
        """A new API token for user ``name``; only its sha256 is kept."""
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        with self.store.tx(f"create a token for {name}") as conn:
            user_id = conn.execute(select(t.users.c.id).where(t.users.c.name == name)).scalar()
            if user_id is None:
                raise NotFoundError(f"no user {name} (add it first: edge dispatch users add)")
            conn.execute(
                insert(t.api_tokens).values(
                    user_id=user_id,
                    token_hash=_digest(token),
                    label=label,
                    created_at=time.time(),
                )
            )
            self.store.record_action(conn, by, "token_create", name, {"label": label})
        return token

    def authenticate_token(self, token: str) -> Principal | None:
        if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
            return None
        with self.store.tx("check a token") as conn:
            row = conn.execute(
                select(t.users.c.id, t.users.c.name, t.users.c.role, t.api_tokens.c.id.label("tid"))
                .join(t.api_tokens, t.api_tokens.c.user_id == t.users.c.id)
                .where(t.api_tokens.c.token_hash == _digest(token), t.users.c.disabled.is_(False))
            ).first()
            if row is None:
                return None
            conn.execute(
                update(t.api_tokens)
                .where(t.api_tokens.c.id == row.tid)
                .values(last_used_at=time.time())
            )
        return Principal(int(row.id), str(row.name), str(row.role), "token")

    # --- console sessions ------------------------------------------------------------------------

    def login(self, name: str, password: str, address: str) -> tuple[str, Principal]:
        """Check the password (rate limited per name and per address); a new session."""
        now = time.time()
        keys = [f"user:{name[:64]}", f"addr:{address[:100]}"]
        window = now - self.config.login_window_s
        with self.store.tx("check login attempts") as conn:
            conn.execute(delete(t.login_failures).where(t.login_failures.c.at < window))
            for key in keys:
                failures = conn.execute(
                    select(func.count())
                    .select_from(t.login_failures)
                    .where(t.login_failures.c.key == key)
                ).scalar_one()
                if failures >= self.config.login_max_failures:
                    raise LoginRefused(
                        "too many failed logins: wait a few minutes and try again", limited=True
                    )
            row = conn.execute(
                select(t.users).where(t.users.c.name == name, t.users.c.disabled.is_(False))
            ).first()
        if row is None or not self._password_ok(str(row.password_hash), password):
            with self.store.tx("record a failed login") as conn:
                conn.execute(insert(t.login_failures), [{"key": k, "at": now} for k in keys])
                self.store.record_action(conn, name[:64] or "-", "login_failed", address[:100])
            raise LoginRefused("wrong user name or password", limited=False)
        session, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        with self.store.tx("open a session") as conn:
            conn.execute(delete(t.sessions).where(t.sessions.c.expires_at < now))
            conn.execute(delete(t.login_failures).where(t.login_failures.c.key == keys[0]))
            conn.execute(
                insert(t.sessions).values(
                    token_hash=_digest(session),
                    user_id=row.id,
                    csrf=csrf,
                    created_at=now,
                    expires_at=now + self.config.session_ttl_s,
                )
            )
            self.store.record_action(conn, str(row.name), "login", address[:100])
        return session, Principal(int(row.id), str(row.name), str(row.role), "session", csrf)

    def _password_ok(self, stored: str, password: str) -> bool:
        try:
            return bool(self.hasher.verify(stored, password))
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def session(self, token: str) -> Principal | None:
        if not token or len(token) > 200:
            return None
        with self.store.tx("check a session") as conn:
            row = conn.execute(
                select(t.users.c.id, t.users.c.name, t.users.c.role, t.sessions.c.csrf)
                .join(t.sessions, t.sessions.c.user_id == t.users.c.id)
                .where(
                    t.sessions.c.token_hash == _digest(token),
                    t.sessions.c.expires_at > time.time(),
                    t.users.c.disabled.is_(False),
                )
            ).first()
        if row is None:
            return None
        return Principal(int(row.id), str(row.name), str(row.role), "session", str(row.csrf))

    def logout(self, token: str, name: str) -> None:
        with self.store.tx("close a session") as conn:
            conn.execute(delete(t.sessions).where(t.sessions.c.token_hash == _digest(token)))
            self.store.record_action(conn, name, "logout", None)


def csrf_ok(principal: Principal, offered: str | None) -> bool:
    """A token-authenticated request needs none; a session's must match its CSRF token."""
    if principal.via != "session":
        return True
    return (
        bool(offered)
        and principal.csrf is not None
        and hmac.compare_digest(principal.csrf, str(offered))
    )
