"""Deciding an alert: the one use case both front doors of the console (the API and the pages)
share."""

from __future__ import annotations

from edge.dispatch.auth import Principal
from edge.dispatch.deps import Deps
from edge.dispatch.rows import ReviewRow
from edge.dispatch.store import TO_DEVICE


def do_review(
    deps: Deps, principal: Principal, alert_id: str, decision: str, note: str | None
) -> ReviewRow:
    """Store a decision, audit it, and send confirm/reject to the device."""
    note = (note or "").strip() or None
    row = deps.store.review(alert_id, decision, note, principal.name, principal.role)
    deps.audit_action(principal, f"review_{decision}", alert_id=alert_id, note=note)
    if decision in TO_DEVICE and deps.send_review is not None:
        deps.send_review(row)
    return row
