"""The dispatch database's plumbing: the engine (SQLite or PostgreSQL, via SQLAlchemy Core), its
schema brought to the newest alembic migration, and one transaction at a time.

Every database error is turned into one :class:`DispatchError` line where it enters. The queries
are in :mod:`edge.dispatch.store` and :mod:`edge.dispatch.list_records`, built on
:class:`Database`.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Self

from sqlalchemy import Connection, Engine, Insert, Table, create_engine, event, insert, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from edge.config.dispatch import DB_PASSWORD_SECRET, check_db_url
from edge.config.secrets import read_secret
from edge.dispatch import tables as t
from edge.errors import DispatchError

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_MIGRATION_LOCK = 0x6564_6765  # pg advisory lock key: 'edge'


def engine_for(url: str, password: str | None = None) -> Engine:
    """An engine for ``url``; a PostgreSQL password comes from the ``dispatch_db_password``
    credential. SQLite runs in WAL mode with ``synchronous=FULL``: a stored (and so
    acknowledged) alert survives power loss."""
    check_db_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        secret = password if password is not None else read_secret(DB_PASSWORD_SECRET)
        if secret:
            parsed = parsed.set(password=secret)
        return create_engine(parsed, pool_size=8, max_overflow=8, pool_pre_ping=True)
    if parsed.database and parsed.database != ":memory:":
        try:
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DispatchError(f"cannot create the folder of {parsed.database}: {exc}") from exc
    engine = create_engine(parsed, connect_args={"check_same_thread": False, "timeout": 30})

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    return engine


def _describe(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


class Database:
    """The dispatch database (thread-safe: a connection pool); the queries build on it."""

    def __init__(self, url: str, *, password: str | None = None, migrate: bool = True) -> None:
        self.url = url
        self.where = _describe(url)
        try:
            self.engine = engine_for(url, password)
            self.dialect = self.engine.dialect.name
            if migrate:
                self.migrate()
        except SQLAlchemyError as exc:
            raise DispatchError(f"database {self.where}: {first_line(exc)}") from exc

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def shared(self) -> bool:
        """Several processes may share this database (PostgreSQL)."""
        return self.dialect == "postgresql"

    def migrate(self, revision: str = "head") -> str:
        """Bring the schema to the newest migration (or ``revision``); returns its revision."""
        from alembic import command
        from alembic.config import Config as AlembicConfig
        from alembic.runtime.migration import MigrationContext

        cfg = AlembicConfig()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        with self.engine.begin() as conn:
            if self.dialect == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
            current = MigrationContext.configure(conn).get_current_revision()
        return str(current)

    # --- plumbing ------------------------------------------------------------------------------

    @contextlib.contextmanager
    def tx(self, what: str) -> Iterator[Connection]:
        """One transaction; a database error becomes a one-line :class:`DispatchError`."""
        try:
            with self.engine.begin() as conn:
                yield conn
        except SQLAlchemyError as exc:
            raise DispatchError(f"cannot {what} ({self.where}): {first_line(exc)}") from exc

    def insert_ignore(self, table: Table) -> Insert:
        """INSERT that skips rows whose key exists (both dialects)."""
        if self.dialect == "postgresql":
            return postgresql.insert(table).on_conflict_do_nothing()
        return sqlite.insert(table).on_conflict_do_nothing()

    def record_action(
        self, conn: Connection, user: str, kind: str, target: str | None, detail: Any = None
    ) -> None:
        """An operator action, in the caller's transaction (the audit file is the caller's)."""
        conn.execute(
            insert(t.actions).values(
                at=time.time(),
                user_name=user,
                kind=kind,
                target=target,
                detail=None if detail is None else json.dumps(detail, sort_keys=True),
            )
        )


def first_line(exc: BaseException) -> str:
    text_ = str(getattr(exc, "orig", None) or exc)
    return text_.strip().splitlines()[0] if text_.strip() else type(exc).__name__
