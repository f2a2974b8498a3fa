"""The front doors: the ``edge`` command, one module per command group.

Each command group is one module of this package with a ``register(subparsers)``; this file
only wires them together and turns every :class:`EdgeError` into a one-line message and exit 2.
A reader that closes stdout early (``edge identify --json | head -c 10``) ends the command
quietly with exit 141, as SIGPIPE ends other Unix tools.
Commands are wiring: they parse arguments, build what they need from the config and call into
the features. Nothing below :mod:`edge.cli` imports it.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import os
import sys
from collections.abc import Callable, Sequence

from edge import __version__
from edge.cli.args import Subparsers, finish_commands
from edge.errors import EdgeError

Handler = Callable[[argparse.Namespace], int]
EXIT_ERROR = 2
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE: what a shell reports for `yes | head -1`


def _registrars() -> list[Callable[[Subparsers], None]]:
    from edge.cli import (
        alerts,
        audit,
        bench,
        config,
        dispatch,
        doctor,
        hub,
        keys,
        provision,
        recognition,
        run,
        sync,
        watchlist,
    )

    return [
        recognition.register,
        bench.register,
        alerts.register,
        audit.register,
        keys.register,
        watchlist.register,
        config.register,
        run.register,
        hub.register,
        sync.register,
        provision.register,
        doctor.register,
        dispatch.register,
    ]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edge", description=__doc__.splitlines()[1])
    parser.add_argument("--version", action="version", version=f"edge {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for register in _registrars():
        register(subparsers)
    finish_commands(parser)
    return parser


def configure_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # Third-party levels are set here and nowhere else.
    for noisy in ("paho", "urllib3", "PIL", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.verbose)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return EXIT_ERROR
    try:
        code = handler(args)
        sys.stdout.flush()  # a closed pipe is noticed here, not in a traceback at exit
        return code
    except BrokenPipeError:
        return _stdout_closed()
    except EdgeError as exc:
        print(f"edge: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("edge: interrupted", file=sys.stderr)
        return 130


def _stdout_closed() -> int:
    """The reader of stdout has gone: point stdout at /dev/null so that the flush at exit
    cannot fail again (with an 'Exception ignored' message), and exit as SIGPIPE would."""
    with contextlib.suppress(OSError, ValueError, io.UnsupportedOperation):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    return EXIT_BROKEN_PIPE
