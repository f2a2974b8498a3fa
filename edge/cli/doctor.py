"""``edge doctor``: check this machine for running edge, and say how to fix what fails.

Exit status 1 if any check failed. The checks are :mod:`edge.services.doctor`'s, plus the
watchlist key.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from edge.cli.args import Subparsers, add_common, config_from_args
from edge.config import Config
from edge.errors import EdgeError
from edge.services import doctor
from edge.services.doctor import FAIL, OK, WARN, Check, format_table, run_checks
from edge.watchlist import keys as keyring


def check_watchlist_key(config: Config, state_dir: Path | None = None) -> Check:
    path = config.watchlist.public_key
    store = config.paths(state_dir).trust
    try:
        key = keyring.find_trusted_key(None, path, store)
    except EdgeError as exc:
        return Check("watchlist-key", FAIL, str(exc), "install the hub's public key (PEM)")
    if key is None:
        return Check(
            "watchlist-key",
            WARN,
            f"no trusted key (watchlist.public_key is not set, none in {store}): no list can "
            "be installed",
            "copy the hub's watchlist-signing.pub to the device and run `edge keys trust` on it",
        )
    where = str(path) if path is not None else str(store)
    return Check("watchlist-key", OK, f"{where} ({keyring.describe(key)})")


CHECKS: dict[str, Callable[[Config, Path], Check]] = {
    **doctor.CHECKS,
    "watchlist-key": lambda c, s: check_watchlist_key(c, s),
}


def cmd_doctor(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    state_dir = config.paths(args.state_dir).root
    unknown = set(args.skip or ()) - set(CHECKS)
    if unknown:
        raise EdgeError(f"--skip {', '.join(sorted(unknown))}: checks are {', '.join(CHECKS)}")
    results = run_checks(config, state_dir, CHECKS, set(args.skip or ()))
    if args.json:
        print(json.dumps([asdict(r) for r in results], sort_keys=True))
    else:
        print(format_table(results))
    return 1 if any(r.result == FAIL for r in results) else 0


def register(subparsers: Subparsers) -> None:
    doctor = subparsers.add_parser(
        "doctor",
        help="check this machine (CPU, memory, camera, models, speed, broker, clock, disk)",
        description="Prints one row per check with a fix for each failure; exit 1 if any "
        "check failed.",
    )
    add_common(doctor, broker=True, state_dir="state directory to check")
    doctor.add_argument(
        "--skip", action="append", metavar="CHECK", help=f"skip a check ({', '.join(CHECKS)})"
    )
    doctor.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    doctor.set_defaults(handler=cmd_doctor, exit_codes={1: "when any check failed"})
