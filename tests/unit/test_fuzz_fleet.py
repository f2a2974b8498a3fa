"""Fuzzing the sync announcement parser (a retained MQTT message anyone on the broker may
write): only SyncError."""

from __future__ import annotations

import json

from fuzz_helpers import documents, fuzz_settings, only_edge_errors
from hypothesis import example, given

from edge.errors import SyncError
from edge.fleet.protocol import Announcement, TransferInfo, parse_announcement

LIST_ID = "gate"
MAX_BYTES = 1 << 30
VALID = Announcement(
    list_id=LIST_ID,
    version=20250601120000,
    published="2025-06-01T12:00:00Z",
    publisher="hub-1",
    transfers=(
        TransferInfo("full", "a" * 64, 100, 64, ("b" * 64, "c" * 64), b"{}", bytes(64)),
        TransferInfo("delta", "d" * 64, 10, 64, ("e" * 64,), b"{}", bytes(64), 20250501120000),
    ),
)
DOCUMENT = json.loads(VALID.to_bytes())


def test_the_valid_announcement_parses() -> None:
    assert parse_announcement(VALID.to_bytes(), LIST_ID, MAX_BYTES) == VALID


@fuzz_settings()
@given(documents(DOCUMENT))
@example(b"[" * 100_000 + b"]" * 100_000)
@example(json.dumps({**DOCUMENT, "version": 2**70}).encode())
def test_parse_announcement_raises_only_sync_errors(payload: bytes) -> None:
    error = only_edge_errors(lambda: parse_announcement(payload, LIST_ID, MAX_BYTES))
    assert error is None or isinstance(error, SyncError), repr(error)
