"""``edge audit verify``: check the hash chain of the device's audit log."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from edge.audit import verify
from edge.cli.args import Subparsers, add_common, command_group, config_from_args, counted


def register(subparsers: Subparsers) -> None:
    commands = command_group(subparsers, "audit", "inspect the hash-chained audit log")
    check = commands.add_parser(
        "verify",
        help="check that no record was edited, removed or reordered",
        description="Exit 0 if the chain is intact, 1 if any record was tampered with. Repairs "
        "(a damaged tail moved aside, with where its bytes are kept) are listed either way.",
    )
    add_common(check, state_dir="the audit log's directory")
    check.add_argument(
        "--path",
        type=Path,
        help="audit log file (default: audit.path, else audit.jsonl in the state directory)",
    )
    check.set_defaults(
        handler=_verify_command,
        exit_codes={1: "when a record was edited, removed or reordered"},
    )


def _verify_command(args: argparse.Namespace) -> int:
    path: Path = args.path or config_from_args(args).paths(args.state_dir).audit
    result = verify(path)
    repaired = f"; {len(result.repairs)} repair(s) of a damaged tail" if result.repairs else ""
    if result.ok:
        print(
            f"audit log {path}: {counted(result.records, 'record')}, chain intact{repaired}; "
            f"head seq {result.head.seq} hash {result.head.hash}"
        )
        for repair in result.repairs:
            print(f"  {repair}")
        return 0
    read = counted(result.records, "record")
    print(f"audit log {path}: TAMPERED ({read} read){repaired}", file=sys.stderr)
    for problem in result.problems:
        print(f"  {problem}", file=sys.stderr)
    for repair in result.repairs:
        print(f"  {repair}", file=sys.stderr)
    return 1
