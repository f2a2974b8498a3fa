"""``edge hub publish|devices|withdraw``: publish watchlists to the fleet, list its devices.

Every failure is an :class:`EdgeError` with a one-line message (``edge: error: ...``, exit 2).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from edge.cli.args import (
    Subparsers,
    add_common,
    command_group,
    config_from_args,
    counted,
    positive_float,
    positive_int,
)


def cmd_publish(args: argparse.Namespace) -> int:
    from edge.fleet.hub import publish
    from edge.watchlist import keys as keyring

    config = config_from_args(args)
    public_key = keyring.find_trusted_key(
        args.pubkey, config.watchlist.public_key, config.paths(args.state_dir).trust
    )
    result = publish(
        config,
        args.bundles,
        chunk_bytes=args.chunk_bytes,
        public_key=public_key,
        timeout_s=args.timeout,
        force=args.force,
    )
    if args.json:
        print(
            json.dumps(
                {
                    "list_id": result.list_id,
                    "version": result.version,
                    "previous_version": result.previous_version,
                    "manifest_topic": result.manifest_topic,
                    "seconds": round(result.seconds, 3),
                    "cleared_chunks": result.cleared_chunks,
                    "transfers": [
                        {
                            "kind": t.kind,
                            "sha256": t.sha256,
                            "bytes": t.size,
                            "chunks": len(t.chunks),
                            "chunk_bytes": t.chunk_bytes,
                        }
                        for t in result.transfers
                    ],
                },
                sort_keys=True,
            )
        )
        return 0
    verified = "verified, " if public_key is not None else "NOT verified (no trusted key), "
    was = f" (replacing v{result.previous_version})" if result.previous_version else ""
    print(
        f"published {result.list_id} v{result.version}{was} on {result.manifest_topic}: "
        f"{verified}{result.seconds:.2f}s"
    )
    for t in result.transfers:
        print(
            f"  {t.kind:5s} {t.sha256[:16]}  {t.size} bytes in "
            f"{counted(len(t.chunks), 'chunk')} of "
            f"{t.chunk_bytes}"
        )
    if result.cleared_chunks:
        print(f"  cleared {counted(result.cleared_chunks, 'chunk')} of the previous version")
    return 0


def cmd_withdraw(args: argparse.Namespace) -> int:
    from edge.fleet.hub import withdraw

    cleared = withdraw(config_from_args(args), args.list_id)
    if cleared:
        chunks = counted(cleared - 1, "chunk")
        print(f"withdrew {args.list_id}: cleared its announcement and {chunks}")
    else:
        print(f"nothing announced for {args.list_id}")
    return 0


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.0f}s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m ago"
    return f"{seconds / 3600:.1f}h ago"


def cmd_devices(args: argparse.Namespace) -> int:
    from edge.fleet.hub import collect_devices

    rows = collect_devices(config_from_args(args), wait_s=args.wait)
    if args.json:
        print(json.dumps([r.as_dict() for r in rows], sort_keys=True))
        return 0
    if not rows:
        print("no device has a retained status on this broker")
        return 0
    table = [("DEVICE", "STATE", "WATCHLIST", "SYNC", "HEARTBEAT", "SOFTWARE", "MODEL")]
    for r in rows:
        status: dict[str, Any] = r.status or {}
        state = r.state
        if state == "offline" and status.get("reason"):
            state += f" ({status['reason']})"
        table.append(
            (
                r.device_id,
                state,
                r.watchlist,
                r.sync_state,
                _age(r.heartbeat_age_s()),
                str(status.get("software") or (r.sync or {}).get("software") or "-"),
                str(status.get("model") or "-"),
            )
        )
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for row in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    online = sum(1 for r in rows if r.state == "online")
    print(f"{len(rows)} device(s), {online} online")
    return 0


def register(subparsers: Subparsers) -> None:
    sub = command_group(subparsers, "hub", "publish watchlists to the fleet, list devices")

    pub = sub.add_parser(
        "publish",
        help="announce a watchlist version to every device (retained, in chunks)",
        description="BUNDLE is a full bundle or a delta; give both (same list and version) so "
        "that devices on the delta's base fetch the delta and every other device the full one.",
    )
    pub.add_argument(
        "bundles",
        type=Path,
        nargs="+",
        metavar="BUNDLE",
        help="a full bundle, a delta, or one of each (same list and version)",
    )
    pub.add_argument(
        "--chunk-bytes",
        type=positive_int,
        help="chunk size (default: sync.chunk_bytes, 65536); stay below the broker's limit",
    )
    pub.add_argument(
        "--pubkey",
        type=Path,
        help="verify each bundle with this key first (default: watchlist.public_key, else "
        "the keys `edge keys trust` installed, if any)",
    )
    pub.add_argument(
        "--force", action="store_true", help="announce even if not newer than the broker's"
    )
    pub.add_argument(
        "--timeout",
        type=positive_float,
        default=300.0,
        help="seconds to wait for the broker's acknowledgements",
    )
    pub.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    add_common(pub, broker=True, state_dir="its trusted keys")
    pub.set_defaults(handler=cmd_publish)

    devices = sub.add_parser(
        "devices", help="every device's retained status, watchlist, sync state, last heartbeat"
    )
    devices.add_argument(
        "--wait",
        type=positive_float,
        default=3.0,
        help="read retained messages for at most this many seconds",
    )
    devices.add_argument(
        "--json", action="store_true", help="print one JSON object instead of text"
    )
    add_common(devices, broker=True)
    devices.set_defaults(handler=cmd_devices)

    withdraw = sub.add_parser(
        "withdraw", help="clear a list's announcement and chunks (devices keep their list)"
    )
    withdraw.add_argument("list_id", metavar="LIST_ID", help="the list to withdraw")
    add_common(withdraw, broker=True)
    withdraw.set_defaults(handler=cmd_withdraw)
