"""The dispatch database's alert, review, device and action queries.

:class:`Store` opens the database (:mod:`edge.dispatch.database`) and holds every query the
ingest side and the console need (the lists' in :mod:`edge.dispatch.list_records`). Each alert
is stored once, keyed by ``alert_id``: a resent alert is ignored by the insert itself
(``ON CONFLICT DO NOTHING``), also when two processes receive it at once. It gets alerts already
decoded (:mod:`edge.dispatch.received`), never a wire payload.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from edge.audit import audit_problem
from edge.dispatch import tables as t
from edge.dispatch.alert_rows import alert_row
from edge.dispatch.list_records import ListRecords
from edge.dispatch.received import Received
from edge.dispatch.rows import ActionRow, ContextFrame, DeviceRow, ReviewMark, ReviewRow
from edge.errors import DispatchError, NotAllowedError, NotFoundError

FINAL_STATES = {"confirm": "confirmed", "reject": "rejected", "escalate": "escalated"}
TO_DEVICE = ("confirm", "reject")  # escalate stays at the centre


class Store(ListRecords):
    """The dispatch database (thread-safe: a connection pool)."""

    # --- ingest --------------------------------------------------------------------------------

    def ingest(self, batch: Sequence[Received], now: float | None = None) -> None:
        """Store a batch of alerts in one transaction; alerts already stored are left alone."""
        if not batch:
            return
        now = time.time() if now is None else now
        unique = {item.alert_id: item for item in batch}
        rows = [alert_row(item, now) for item in unique.values()]
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

    def context(self, alert_id: str) -> ContextFrame | None:
        """The context frame's size and box (``width``, ``height``, ``box``), without the JPEG."""
        c = t.alert_contexts.c
        with self.tx("read a context frame") as conn:
            row = conn.execute(
                select(c.width, c.height, c.box).where(c.alert_id == alert_id)
            ).first()
        if row is None:
            return None
        return ContextFrame(width=int(row.width), height=int(row.height), box=json.loads(row.box))

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
    ) -> ReviewRow:
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
        return ReviewRow(
            id=int(review_id[0]),
            alert_id=alert_id,
            decision=decision,
            note=note,
            by_user=user,
            at=now,
            device_id=str(row.device_id),
            sent_at=None,
        )

    def reviews_of(self, alert_id: str) -> list[ReviewRow]:
        with self.tx("read reviews") as conn:
            rows = conn.execute(
                select(t.reviews).where(t.reviews.c.alert_id == alert_id).order_by(t.reviews.c.id)
            ).mappings()
            return [ReviewRow(**r) for r in rows]

    def unsent_reviews(self, older_than_s: float = 0.0, limit: int = 100) -> list[ReviewRow]:
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
            return [ReviewRow(**r) for r in rows]

    def review_sent(self, review_id: int) -> None:
        with self.tx("mark a review sent") as conn:
            conn.execute(
                update(t.reviews).where(t.reviews.c.id == review_id).values(sent_at=time.time())
            )

    def reviews_after(self, review_id: int, limit: int = 200) -> list[ReviewMark]:
        with self.tx("read reviews") as conn:
            rows = conn.execute(
                select(t.reviews.c.id, t.reviews.c.alert_id)
                .where(t.reviews.c.id > review_id)
                .order_by(t.reviews.c.id)
                .limit(limit)
            ).mappings()
            return [ReviewMark(**r) for r in rows]

    def max_review_id(self) -> int:
        with self.tx("read reviews") as conn:
            return int(conn.execute(select(func.max(t.reviews.c.id))).scalar() or 0)

    # --- devices ---------------------------------------------------------------------------------

    def _ensure_device(self, conn: Connection, device_id: str) -> tuple[int | None, str | None]:
        """Add the device if it is new and lock its row; returns the audit head dispatch saw."""
        conn.execute(self.insert_ignore(t.devices).values(device_id=device_id))
        c = t.devices.c
        query = select(c.audit_seq, c.audit_hash).where(c.device_id == device_id)
        if self.dialect == "postgresql":
            query = query.with_for_update()
        row = conn.execute(query).one()
        return row.audit_seq, row.audit_hash

    def device_status(self, device_id: str, status: Mapping[str, Any], now: float) -> None:
        watchlist = status.get("watchlist") or {}
        values: dict[str, object] = {
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
            seq_before, hash_before = self._ensure_device(conn, device_id)
            values: dict[str, object] = {
                "heartbeat_at": now,
                "heartbeat": json.dumps(heartbeat, sort_keys=True),
                "outbox_depth": depth if isinstance(depth, int) else None,
            }
            problem = None
            if isinstance(head, dict) and isinstance(head.get("seq"), int):
                links = heartbeat.get("audit_links")
                problem = audit_problem(
                    seq_before,
                    hash_before,
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

    def devices(self) -> list[DeviceRow]:
        with self.tx("read devices") as conn:
            rows = conn.execute(
                select(*[c for c in t.devices.c if c.name not in ("status", "heartbeat")]).order_by(
                    t.devices.c.device_id
                )
            ).mappings()
            return [DeviceRow(**r) for r in rows]

    # --- actions ---------------------------------------------------------------------------------

    def actions(self, limit: int = 100, before: int | None = None) -> list[ActionRow]:
        query = select(t.actions)
        if before is not None:
            query = query.where(t.actions.c.id < before)
        with self.tx("read actions") as conn:
            rows = conn.execute(query.order_by(t.actions.c.id.desc()).limit(limit)).mappings()
            return [ActionRow(**r) for r in rows]


def _text(value: Any, limit: int) -> str | None:
    return None if value is None else str(value)[:limit]
