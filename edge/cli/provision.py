"""``edge provision``: merge a device profile and a site config into one validated config file.

Every failure is an :class:`EdgeError` with a one-line message (``edge: error: ...``, exit 2).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from edge.cli.args import Subparsers
from edge.errors import ConfigError
from edge.system.files import write_atomically


def cmd_provision(args: argparse.Namespace) -> int:
    from edge.fleet.profiles import compose, render

    data, _ = compose(args.profile, args.site, args.device_id)
    sources = [args.profile] + ([args.site] if args.site else [])
    text = render(data, sources)
    if args.out is None:
        sys.stdout.write(text)
        return 0
    try:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(args.out, text.encode("utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot write {args.out}: {exc.strerror or exc}") from exc
    print(f"wrote {args.out} (validated)")
    return 0


def register(subparsers: Subparsers) -> None:
    prov = subparsers.add_parser(
        "provision",
        help="merge a device profile and a site config into one validated config file",
    )
    prov.add_argument("--profile", type=Path, required=True, help="firmware-config/profiles/X")
    prov.add_argument("--site", type=Path, help="site config (wins over the profile)")
    prov.add_argument("--device-id", help="set device.id")
    prov.add_argument("--out", type=Path, help="write here (default: stdout)")
    prov.set_defaults(handler=cmd_provision)
