"""The dispatch database: SQLite (one process) or PostgreSQL (several), via SQLAlchemy Core.

:class:`Store` opens the database, brings its schema to the newest alembic migration (under an
advisory lock on PostgreSQL, so processes starting together do not race), and holds every query
the ingest side and the console need. Each alert is stored once, keyed by ``alert_id``: a resent
alert is ignored by the insert itself (``ON CONFLICT DO NOTHING``), also when two processes
receive it at once.

Every database error is turned into one :class:`DispatchError` line where it enters.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    Insert,
    Table,
    create_engine,
    delete,
    event,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from edge.alerts.schema import decode_alert
from edge.audit import audit_problem
from edge.clock import parse_time, utc_rfc3339
from edge.config.dispatch import DB_PASSWORD_SECRET, check_db_url
from edge.config.secrets import read_secret
from edge.dispatch import tables as t
from edge.errors import AlertError, DispatchError, NotAllowedError, NotFoundError

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_MIGRATION_LOCK = 0x6564_6765  # pg advisory lock key: 'edge'
# The largest alert a device can send (a 256 KiB crop, a 512 KiB context frame, the rest small),
# with room: anything larger is refused before it is parsed.
MAX_ALERT_BYTES = 1 << 20
FINAL_STATES = {"confirm": "confirmed", "reject": "rejected", "escalate": "escalated"}
TO_DEVICE = ("confirm", "reject")  # escalate stays at the centre


@dataclass(frozen=True)
class Context:
    """An alert's scene frame: the JPEG as sent, its size, and the matched face's box in it."""

    jpeg: bytes
    width: int
    height: int
    box: tuple[int, int, int, int]


@dataclass(frozen=True)
class Received:
    """One alert as received: validated, its crop and context frame (JPEG bytes) kept apart."""

    alert: dict[str, Any]
    crop: bytes | None
    context: Context | None = None

    @property
    def alert_id(self) -> str:
        return str(self.alert["alert_id"])

    @property
    def device_id(self) -> str:
        return str(self.alert["device_id"])


def received(payload: bytes) -> Received:
    """Decode and validate an alert payload (:class:`edge.errors.AlertError` if invalid).

    A context frame whose box does not lie inside it is dropped (logged): the alert matters
    more than the picture, and a box drawn elsewhere would point at the wrong person."""
    if len(payload) > MAX_ALERT_BYTES:
        raise AlertError(f"alert of {len(payload)} bytes is over the {MAX_ALERT_BYTES}-byte limit")
    alert = decode_alert(payload)
    crop = alert.pop("crop", None)
    jpeg = base64.b64decode(crop["data"]) if crop else None
    return Received(alert, jpeg, _context(alert.pop("context", None), alert["alert_id"]))


def _context(sent: dict[str, Any] | None, alert_id: str) -> Context | None:
    if sent is None:
        return None
    width, height = int(sent["width"]), int(sent["height"])
    x1, y1, x2, y2 = (int(v) for v in sent["box"])
    if not (x1 < x2 <= width and y1 < y2 <= height):
        log.warning(
            "alert %s: context box %s is not inside its %dx%d frame: frame dropped",
            alert_id,
            sent["box"],
            width,
            height,
        )
        return None
    return Context(base64.b64decode(sent["data"]), width, height, (x1, y1, x2, y2))


def _alert_row(item: Received, now: float) -> dict[str, Any]:
    a = item.alert
    where = a.get("location") or {}
    return {
        "alert_id": a["alert_id"],
        "device_id": a["device_id"],
        # Normalised (milliseconds, 'Z') so that the text sorts as time does.
        "event_time": utc_rfc3339(parse_time(a["event_time"])),
        "received_at": now,
        "watchlist_id": a["watchlist"]["id"],
        "watchlist_version": a["watchlist"]["version"],
        "entry_id": a["entry"]["id"],
        "entry_label": a["entry"]["label"],
        "score": float(a["score"]),
        "threshold": float(a["threshold"]),
        "quality": float(a["quality"]),
        "track_id": int(a["track_id"]),
        "model_id": a["model_id"],
        "location_name": where.get("name"),
        "lat": where.get("lat"),
        "lon": where.get("lon"),
        "test": bool(a["test"]),
        "has_crop": item.crop is not None,
        "has_context": item.context is not None,
        "state": "new",
        "document": json.dumps(a, sort_keys=True, separators=(",", ":")),
    }


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


class Store:
    """The dispatch database (thread-safe: a connection pool)."""

    def __init__(self, url: str, *, password: str | None = None, migrate: bool = True) -> None:
        self.url = url
        self.where = _describe(url)
        try:
            self.engine = engine_for(url, password)
            self.dialect = self.engine.dialect.name
            if migrate:
                self.migrate()
        except SQLAlchemyError as exc:
            raise DispatchError(f"database {self.where}: {_first_line(exc)}") from exc

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
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
            raise DispatchError(f"cannot {what} ({self.where}): {_first_line(exc)}") from exc

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

    # --- ingest --------------------------------------------------------------------------------

    def ingest(self, batch: Sequence[Received], now: float | None = None) -> None:
        """Store a batch of alerts in one transaction; alerts already stored are left alone."""
        if not batch:
            return
        now = time.time() if now is None else now
        unique = {item.alert_id: item for item in batch}
        rows = [_alert_row(item, now) for item in unique.values()]
        crops = [
            {"alert_id": item.alert_id, "jpeg": item.crop}
            for item in unique.values()
            if item.crop is not None
        ]
        contexts = [
            {
                "alert_id": item.alert_id,
                "jpeg": item.context.jpeg,
                "width": item.context.width,
                "height": item.context.height,
                "box": json.dumps(list(item.context.box)),
            }
            for item in unique.values()
            if item.context is not None
        ]
        with self.tx(f"store {len(rows)} alerts") as conn:
            conn.execute(self.insert_ignore(t.alerts), rows)
            if crops:
                conn.execute(self.insert_ignore(t.alert_crops), crops)
            if contexts:
                conn.execute(self.insert_ignore(t.alert_contexts), contexts)

    def count_alerts(self) -> int:
        with self.tx("count alerts") as conn:
            return int(conn.execute(select(func.count()).select_from(t.alerts)).scalar_one())

    def alert_ids(self) -> list[str]:
        with self.tx("read alert ids") as conn:
            return [str(r[0]) for r in conn.execute(select(t.alerts.c.alert_id))]

    # --- the alert list and pages ----------------------------------------------------------------

    _LIST_COLUMNS = tuple(c for c in t.alerts.c if c.name != "document")

    def list_alerts(
        self,
        *,
        limit: int = 50,
        before: int | None = None,
        after: int | None = None,
        since: str | None = None,
        device: str | None = None,
        entry: tuple[str, str] | None = None,
        state: str | None = None,
    ) -> list[dict[str, Any]]:
        """Alerts newest first (by arrival: ``seq``), filtered; ``after`` lists oldest first."""
        query = select(*self._LIST_COLUMNS)
        if before is not None:
            query = query.where(t.alerts.c.seq < before)
        if after is not None:
            query = query.where(t.alerts.c.seq > after)
        if since is not None:
            query = query.where(t.alerts.c.event_time >= since)
        if device is not None:
            query = query.where(t.alerts.c.device_id == device)
        if entry is not None:
            query = query.where(
                t.alerts.c.watchlist_id == entry[0], t.alerts.c.entry_id == entry[1]
            )
        if state is not None:
            query = query.where(t.alerts.c.state == state)
        order = t.alerts.c.seq.asc() if after is not None else t.alerts.c.seq.desc()
        with self.tx("list alerts") as conn:
            rows = conn.execute(query.order_by(order).limit(limit)).mappings().all()
        return [dict(r) for r in rows]

    def get_alert(self, alert_id: str) -> dict[str, Any]:
        with self.tx("read an alert") as conn:
            row = conn.execute(select(t.alerts).where(t.alerts.c.alert_id == alert_id)).first()
        if row is None:
            raise NotFoundError(f"no alert {alert_id}")
        return dict(row._mapping)

    def crop(self, alert_id: str) -> bytes | None:
        with self.tx("read a crop") as conn:
            jpeg = conn.execute(
                select(t.alert_crops.c.jpeg).where(t.alert_crops.c.alert_id == alert_id)
            ).scalar()
        return None if jpeg is None else bytes(jpeg)

    def context(self, alert_id: str) -> dict[str, Any] | None:
        """The context frame's size and box (``width``, ``height``, ``box``), without the JPEG."""
        c = t.alert_contexts.c
        with self.tx("read a context frame") as conn:
            row = conn.execute(
                select(c.width, c.height, c.box).where(c.alert_id == alert_id)
            ).first()
        if row is None:
            return None
        return {"width": int(row.width), "height": int(row.height), "box": json.loads(row.box)}

    def context_jpeg(self, alert_id: str) -> bytes | None:
        c = t.alert_contexts.c
        with self.tx("read a context frame") as conn:
            jpeg = conn.execute(select(c.jpeg).where(c.alert_id == alert_id)).scalar()
        return None if jpeg is None else bytes(jpeg)

    def max_seq(self) -> int:
        with self.tx("read the newest alert") as conn:
            return int(conn.execute(select(func.max(t.alerts.c.seq))).scalar() or 0)

    # --- reviews ---------------------------------------------------------------------------------

    def review(
        self, alert_id: str, decision: str, note: str | None, user: str, role: str
    ) -> dict[str, Any]:
        """Record a decision on an alert (and the action); returns the review row.

        An operator decides new alerts; an escalated or decided one is the supervisor's."""
        if decision not in FINAL_STATES:
            raise DispatchError(f"decision {decision!r}: use confirm, reject or escalate")
        now = time.time()
        with self.tx("store a review") as conn:
            row = conn.execute(
                select(t.alerts.c.state, t.alerts.c.device_id).where(
                    t.alerts.c.alert_id == alert_id
                )
            ).first()
            if row is None:
                raise NotFoundError(f"no alert {alert_id}")
            if row.state != "new" and role != "supervisor":
                raise NotAllowedError(
                    f"alert {alert_id} is {row.state}: only a supervisor decides it now"
                )
            values = {
                "alert_id": alert_id,
                "decision": decision,
                "note": note,
                "by_user": user,
                "at": now,
                "device_id": row.device_id,
            }
            review_id = conn.execute(insert(t.reviews).values(**values)).inserted_primary_key
            conn.execute(
                update(t.alerts)
                .where(t.alerts.c.alert_id == alert_id)
                .values(state=FINAL_STATES[decision], reviewed_at=now, reviewed_by=user)
            )
            self.record_action(conn, user, f"review_{decision}", alert_id, {"note": note})
        assert review_id is not None
        return {"id": int(review_id[0]), **values, "sent_at": None}

    def reviews_of(self, alert_id: str) -> list[dict[str, Any]]:
        with self.tx("read reviews") as conn:
            rows = conn.execute(
                select(t.reviews).where(t.reviews.c.alert_id == alert_id).order_by(t.reviews.c.id)
            ).mappings()
            return [dict(r) for r in rows]

    def unsent_reviews(self, older_than_s: float = 0.0, limit: int = 100) -> list[dict[str, Any]]:
        """Decisions for devices not yet acknowledged by the broker (oldest first)."""
        cutoff = time.time() - older_than_s
        with self.tx("read unsent reviews") as conn:
            rows = conn.execute(
                select(t.reviews)
                .where(
                    t.reviews.c.sent_at.is_(None),
                    t.reviews.c.decision.in_(TO_DEVICE),
                    t.reviews.c.at <= cutoff,
                )
                .order_by(t.reviews.c.id)
                .limit(limit)
            ).mappings()
            return [dict(r) for r in rows]

    def review_sent(self, review_id: int) -> None:
        with self.tx("mark a review sent") as conn:
            conn.execute(
                update(t.reviews).where(t.reviews.c.id == review_id).values(sent_at=time.time())
            )

    def reviews_after(self, review_id: int, limit: int = 200) -> list[dict[str, Any]]:
        with self.tx("read reviews") as conn:
            rows = conn.execute(
                select(t.reviews.c.id, t.reviews.c.alert_id)
                .where(t.reviews.c.id > review_id)
                .order_by(t.reviews.c.id)
                .limit(limit)
            ).mappings()
            return [dict(r) for r in rows]

    def max_review_id(self) -> int:
        with self.tx("read reviews") as conn:
            return int(conn.execute(select(func.max(t.reviews.c.id))).scalar() or 0)

    # --- entries and lists -----------------------------------------------------------------------

    def entry(self, list_id: str, entry_id: str) -> dict[str, Any] | None:
        with self.tx("read an entry") as conn:
            row = conn.execute(
                select(t.entries).where(
                    t.entries.c.list_id == list_id, t.entries.c.entry_id == entry_id
                )
            ).first()
        return None if row is None else dict(row._mapping)

    def entry_photo(
        self, list_id: str, entry_id: str, n: int, *, face: bool = False
    ) -> bytes | None:
        """Reference photo ``n`` of an entry (a thumbnail), or with ``face`` its enrolled face."""
        p = t.entry_photos.c
        with self.tx("read a reference photo") as conn:
            jpeg = conn.execute(
                select(p.face_jpeg if face else p.jpeg).where(
                    p.list_id == list_id, p.entry_id == entry_id, p.n == n
                )
            ).scalar()
        return None if jpeg is None else bytes(jpeg)

    def entry_photos(self, list_id: str, entry_id: str) -> list[dict[str, Any]]:
        """An entry's reference photos, without the JPEGs: ``n``, ``width``, ``height`` of the
        thumbnail, ``has_face``, ``face_box`` (in the thumbnail, or None), ``face_note``."""
        p = t.entry_photos.c
        with self.tx("read reference photos") as conn:
            rows = conn.execute(
                select(
                    p.n,
                    p.width,
                    p.height,
                    p.face_jpeg.is_not(None).label("has_face"),
                    p.face_box,
                    p.face_note,
                )
                .where(p.list_id == list_id, p.entry_id == entry_id)
                .order_by(p.n)
            ).mappings()
            return [
                {
                    **r,
                    "has_face": bool(r["has_face"]),
                    "face_box": None if r["face_box"] is None else json.loads(r["face_box"]),
                }
                for r in rows
            ]

    def import_list(
        self,
        manifest: Mapping[str, Any],
        entries: Sequence[Mapping[str, Any]],
        photos: Sequence[Mapping[str, Any]],
        user: str,
    ) -> None:
        """Store a list's entry details and reference thumbnails (replacing those of the same
        entries); entries that left the list are kept for the alerts that name them."""
        list_id, version = str(manifest["list_id"]), int(manifest["version"])
        ids = [str(e["entry_id"]) for e in entries]
        with self.tx(f"import list {list_id}") as conn:
            conn.execute(delete(t.watchlists).where(t.watchlists.c.list_id == list_id))
            conn.execute(
                insert(t.watchlists).values(
                    list_id=list_id,
                    version=version,
                    imported_at=time.time(),
                    imported_by=user,
                    valid_until=str(manifest["valid_until"]),
                    entry_count=len(entries),
                    manifest=json.dumps(manifest, sort_keys=True),
                )
            )
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                for table in (t.entries, t.entry_photos):
                    conn.execute(
                        delete(table).where(table.c.list_id == list_id, table.c.entry_id.in_(chunk))
                    )
            if entries:
                conn.execute(
                    insert(t.entries),
                    [{**e, "list_id": list_id, "version": version} for e in entries],
                )
            if photos:
                conn.execute(insert(t.entry_photos), [{**p, "list_id": list_id} for p in photos])
            self.record_action(
                conn, user, "import_list", list_id, {"version": version, "entries": len(entries)}
            )

    def watchlists(self) -> list[dict[str, Any]]:
        with self.tx("read lists") as conn:
            rows = conn.execute(
                select(*[c for c in t.watchlists.c if c.name != "manifest"]).order_by(
                    t.watchlists.c.list_id
                )
            ).mappings()
            return [dict(r) for r in rows]

    # --- devices ---------------------------------------------------------------------------------

    def _ensure_device(self, conn: Connection, device_id: str) -> dict[str, Any]:
        conn.execute(self.insert_ignore(t.devices).values(device_id=device_id))
        query = select(t.devices).where(t.devices.c.device_id == device_id)
        if self.dialect == "postgresql":
            query = query.with_for_update()
        return dict(conn.execute(query).one()._mapping)

    def device_status(self, device_id: str, status: Mapping[str, Any], now: float) -> None:
        watchlist = status.get("watchlist") or {}
        values: dict[str, Any] = {
            "state": str(status.get("state", "unknown"))[:16],
            "state_reason": None if status.get("reason") is None else str(status["reason"])[:200],
            "status_at": now,
            "status": json.dumps(status, sort_keys=True),
        }
        if values["state"] == "online":
            values.update(
                watchlist_id=watchlist.get("id") if isinstance(watchlist, dict) else None,
                watchlist_version=(
                    None
                    if not isinstance(watchlist, dict) or watchlist.get("version") is None
                    else str(watchlist["version"])
                ),
                software=_text(status.get("software"), 64),
                model=_text(status.get("model"), 128),
            )
        with self.tx(f"store the status of {device_id}") as conn:
            self._ensure_device(conn, device_id)
            conn.execute(update(t.devices).where(t.devices.c.device_id == device_id).values(values))

    def device_heartbeat(
        self, device_id: str, heartbeat: Mapping[str, Any], now: float
    ) -> str | None:
        """Store a heartbeat; returns the audit-chain problem it revealed, if any (the device is
        flagged until a supervisor clears it)."""
        outbox = heartbeat.get("outbox")
        depth = outbox.get("depth") if isinstance(outbox, dict) else None
        head = heartbeat.get("audit_head")
        with self.tx(f"store the heartbeat of {device_id}") as conn:
            device = self._ensure_device(conn, device_id)
            values: dict[str, Any] = {
                "heartbeat_at": now,
                "heartbeat": json.dumps(heartbeat, sort_keys=True),
                "outbox_depth": depth if isinstance(depth, int) else None,
            }
            problem = None
            if isinstance(head, dict) and isinstance(head.get("seq"), int):
                links = heartbeat.get("audit_links")
                problem = audit_problem(
                    device["audit_seq"],
                    device["audit_hash"],
                    head["seq"],
                    str(head.get("hash")),
                    links if isinstance(links, list) else [],
                )
                values.update(audit_seq=head["seq"], audit_hash=str(head.get("hash"))[:64])
                if problem is not None:
                    values.update(audit_problem=problem, audit_problem_at=now)
                    self.record_action(
                        conn, "dispatch", "audit_flag", device_id, {"problem": problem}
                    )
            conn.execute(update(t.devices).where(t.devices.c.device_id == device_id).values(values))
        return problem

    def clear_audit_flag(self, device_id: str, user: str) -> None:
        with self.tx(f"clear the audit flag of {device_id}") as conn:
            done = conn.execute(
                update(t.devices)
                .where(t.devices.c.device_id == device_id)
                .values(audit_problem=None, audit_problem_at=None)
            )
            if not done.rowcount:
                raise NotFoundError(f"no device {device_id}")
            self.record_action(conn, user, "audit_flag_cleared", device_id)

    def devices(self) -> list[dict[str, Any]]:
        with self.tx("read devices") as conn:
            rows = conn.execute(
                select(*[c for c in t.devices.c if c.name not in ("status", "heartbeat")]).order_by(
                    t.devices.c.device_id
                )
            ).mappings()
            return [dict(r) for r in rows]

    # --- actions ---------------------------------------------------------------------------------

    def actions(self, limit: int = 100, before: int | None = None) -> list[dict[str, Any]]:
        query = select(t.actions)
        if before is not None:
            query = query.where(t.actions.c.id < before)
        with self.tx("read actions") as conn:
            rows = conn.execute(query.order_by(t.actions.c.id.desc()).limit(limit)).mappings()
            return [dict(r) for r in rows]


def _text(value: Any, limit: int) -> str | None:
    return None if value is None else str(value)[:limit]


def _first_line(exc: BaseException) -> str:
    text_ = str(getattr(exc, "orig", None) or exc)
    return text_.strip().splitlines()[0] if text_.strip() else type(exc).__name__
