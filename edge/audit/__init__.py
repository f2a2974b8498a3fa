"""Append-only, hash-chained audit log (JSON lines): a foundation.

- :mod:`edge.audit.log`: the log itself (:class:`AuditLog`: append, head, repair of a damaged
  tail), and the record format.
- :mod:`edge.audit.kinds`: the kinds of record edge writes.
- :mod:`edge.audit.verification`: ``edge audit verify``'s check of a whole file.
- :mod:`edge.audit.chain`: the heads a device reports in heartbeats and dispatch's check of them.

Everything is re-exported here, so ``from edge import audit`` reads as it always did.
"""

from edge.audit.chain import AUDIT_LINKS, HeartbeatHeads, audit_problem
from edge.audit.kinds import (
    ACK,
    ACK_INVALID,
    DISPATCH_ACK,
    EVICT,
    HIT,
    HIT_HELD_IN_MEMORY,
    HIT_REJECTED,
    REFUSED,
    REPAIR,
    REPAIR_KINDS,
    REPAIRED_BEFORE,
    REVIEW,
    REVIEW_INVALID,
    SEND,
    STORED,
    UNDELIVERED,
    WATCHLIST_CHANGE,
)
from edge.audit.log import (
    CUT_INFIX,
    GENESIS,
    MAX_REPAIR_BYTES,
    AuditLog,
    Head,
    canonical_json,
    record_hash,
)
from edge.audit.verification import VerifyResult, read_records, verify

__all__ = [
    "ACK",
    "ACK_INVALID",
    "AUDIT_LINKS",
    "CUT_INFIX",
    "DISPATCH_ACK",
    "EVICT",
    "GENESIS",
    "HIT",
    "HIT_HELD_IN_MEMORY",
    "HIT_REJECTED",
    "MAX_REPAIR_BYTES",
    "REFUSED",
    "REPAIR",
    "REPAIRED_BEFORE",
    "REPAIR_KINDS",
    "REVIEW",
    "REVIEW_INVALID",
    "SEND",
    "STORED",
    "UNDELIVERED",
    "WATCHLIST_CHANGE",
    "AuditLog",
    "Head",
    "HeartbeatHeads",
    "VerifyResult",
    "audit_problem",
    "canonical_json",
    "read_records",
    "record_hash",
    "verify",
]
