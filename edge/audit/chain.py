"""The audit chain as others see it: the heads a device reports in its heartbeats, and what
dispatch concludes from them.

A heartbeat's ``audit_head`` and ``audit_links`` let dispatch hold on to the device's audit
chain: each heartbeat re-reads the heads of the last few as the log has them now, so a log that
was cut and then written past shows (docs/alerts.md, "Heartbeat"). :func:`audit_problem` is
dispatch's side: whether the new head continues the chain it saw.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Sequence
from typing import Any

from edge.audit.log import AuditLog
from edge.errors import AuditError

# The name these lines always had: operators and their log filters know it.
log = logging.getLogger("edge.alerts.presence")

AUDIT_LINKS = 3  # earlier heartbeat heads re-checked in each heartbeat


class HeartbeatHeads:
    """The audit heads reported in heartbeats (seq, hash, file offset), re-checked in later ones.

    ``continuing`` (the device's own service) starts from the log's current head, so the first
    heartbeat already links to where the previous run left off."""

    def __init__(self, audit: AuditLog | None, *, continuing: bool) -> None:
        self.audit = audit
        self._reported: deque[tuple[int, str, int]] = deque(maxlen=AUDIT_LINKS)
        if audit is not None and continuing:
            try:
                head, offset = audit.anchor()
                if head.seq:
                    self._reported.append((head.seq, head.hash, offset))
            except AuditError as exc:
                log.error("%s", exc)

    def report(self, document: dict[str, Any]) -> None:
        """Add ``audit_head`` (and ``audit_links``) to a heartbeat ``document``."""
        if self.audit is None:
            return
        try:
            head, offset = self.audit.anchor()
            document["audit_head"] = {"seq": head.seq, "hash": head.hash}
            # Each head reported before, as found in the file now: a hash of null (or another
            # one) tells dispatch the chain it saw does not continue into this head.
            links = [
                {"seq": seq, "hash": self.audit.hash_at(at, seq)}
                for seq, _, at in self._reported
                if seq != head.seq
            ]
            if links:
                document["audit_links"] = links
            if head.seq and (not self._reported or self._reported[-1][0] != head.seq):
                self._reported.append((head.seq, head.hash, offset))
        except AuditError as exc:
            log.error("%s", exc)


def audit_problem(
    seq_before: int | None,
    hash_before: str | None,
    seq: int,
    head_hash: str,
    links: Sequence[Any],
) -> str | None:
    """What is wrong with a device's new audit head, given the last one dispatch saw, or None.

    ``links`` are earlier heads as the device finds them in its log now (``{"seq", "hash"}``,
    hash null if that record is gone): the chain dispatch saw must continue into the new head.
    """
    if seq_before is None or hash_before is None:
        return None
    if seq < seq_before:
        return (
            f"audit log went backwards: head seq {seq} after {seq_before} (records removed from "
            "the end of the device's log?)"
        )
    if seq == seq_before:
        if head_hash != hash_before:
            return f"audit record seq {seq} changed its hash: the device's log was rewritten"
        return None
    for link in links:
        if isinstance(link, dict) and link.get("seq") == seq_before:
            if link.get("hash") != hash_before:
                return (
                    f"audit chain does not continue: record seq {seq_before} that dispatch saw "
                    "is gone or changed in the device's log (cut and written past?)"
                )
            return None
    return None
