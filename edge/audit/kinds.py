"""The kinds of audit record edge writes. Others may be added; verify does not depend on them."""

from __future__ import annotations

HIT = "hit"
HIT_HELD_IN_MEMORY = "hit_held_in_memory"
HIT_REJECTED = "hit_rejected"
STORED = "stored"
EVICT = "evict"
SEND = "send"
ACK = "ack"  # the broker's PUBACK (with alerts.require_dispatch_ack false it removes the alert)
DISPATCH_ACK = "dispatch_ack"  # dispatch stored the alerts: they leave the outbox
UNDELIVERED = "undelivered"  # MQTT 5 PUBACK 'no matching subscribers': nobody received it
ACK_INVALID = "ack_invalid"
REFUSED = "refused"
REVIEW = "review"
REVIEW_INVALID = "review_invalid"
WATCHLIST_CHANGE = "watchlist_change"
REPAIR = "audit_repair"  # a damaged tail was moved aside (data: what, and where it is kept)
REPAIRED_BEFORE = "audit_repaired"  # the same record, as earlier versions named it (torn lines)
REPAIR_KINDS = frozenset({REPAIR, REPAIRED_BEFORE})
