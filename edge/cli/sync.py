"""``edge sync``: the device side of the fleet (watchlist sync, the local API, the watchdog).

Every failure is an :class:`EdgeError` with a one-line message (``edge: error: ...``, exit 2).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from edge.cli.args import Subparsers, add_common, config_from_args


def cmd_sync(args: argparse.Namespace) -> int:
    from edge.services.agent import Agent

    config = config_from_args(args, {"sync": {"lists": list(args.list)}} if args.list else None)
    agent = Agent(
        config,
        state_dir=args.state_dir,
        public_key=args.pubkey,
        agent=args.agent,
        serve_api=False if args.no_api else None,
    )
    return agent.run()


def register(subparsers: Subparsers) -> None:
    sync = subparsers.add_parser(
        "sync",
        help="device side: follow watchlists over MQTT, install them; local API; watchdog",
        description="Runs until SIGTERM. Installs every new version of the lists in "
        "sync.lists that the hub announces (after every watchlist check); `edge run` picks it "
        "up. With --agent it also publishes this device's status (with the installed version), "
        "heartbeat and outbox, for a device whose recognizer is not running.",
    )
    sync.add_argument(
        "--list",
        action="append",
        metavar="LIST_ID",
        help="follow this list (repeatable) (default: sync.lists)",
    )
    sync.add_argument(
        "--pubkey",
        type=Path,
        help="trusted key (default: watchlist.public_key, else the keys `edge keys trust` "
        "installed)",
    )
    sync.add_argument(
        "--agent",
        action="store_true",
        help="also own the device's status/heartbeat/outbox (never beside `edge run`)",
    )
    sync.add_argument("--no-api", action="store_true", help="do not serve the local API")
    add_common(sync, broker=True, state_dir="installed list, transfers, outbox and audit log")
    sync.set_defaults(
        handler=cmd_sync,
        exit_codes={
            0: "when stopped by SIGTERM or SIGINT (Ctrl-C)",
            1: "when one of its threads died",
            130: "when interrupted (Ctrl-C) while still starting",
        },
    )
