"""``edge dispatch {serve,users,tokens,import-list,migrate}``: the dispatch centre."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from pathlib import Path
from typing import Any

from edge.cli.args import (
    Subparsers,
    add_common,
    command_group,
    config_from_args,
    counted,
    parse_broker,
)
from edge.config import Config
from edge.errors import ConfigError, DispatchError

_STATE_DIR = "directory of the default SQLite database and the audit log"


def _add_db(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--db",
        metavar="URL",
        help="database: sqlite:///PATH or postgresql://USER@HOST[:PORT]/DB (default: "
        "dispatch.db, else <state_dir>/dispatch.db); the password is the credential "
        "dispatch_db_password",
    )
    add_common(parser, state_dir=_STATE_DIR)


def _config(args: argparse.Namespace, **dispatch: Any) -> Config:
    overrides: dict[str, Any] = {k: v for k, v in dispatch.items() if v is not None}
    if getattr(args, "db", None):
        overrides["db"] = args.db
    return config_from_args(args, {"dispatch": overrides} if overrides else None)


def _store(args: argparse.Namespace) -> Any:
    from edge.dispatch.store import Store

    config = _config(args)
    return Store(config.paths(args.state_dir).dispatch_db), config


def register(subparsers: Subparsers) -> None:
    commands = command_group(subparsers, "dispatch", "the dispatch centre: receive, review, ack")

    serve = commands.add_parser(
        "serve",
        help="receive every device's alerts, acknowledge them, serve the web console and API",
        description="Runs until SIGTERM. Exit 1 if one of its threads dies (systemd restarts it).",
    )
    _add_db(serve)
    serve.add_argument(
        "--broker", metavar="HOST:PORT", help="broker address (default: mqtt.host/port)"
    )
    serve.add_argument(
        "--listen", metavar="HOST:PORT", help="console address (default: dispatch.host/port)"
    )
    serve.set_defaults(
        handler=_serve,
        exit_codes={
            0: "when stopped by SIGTERM or SIGINT (Ctrl-C)",
            1: "when one of its threads died",
            130: "when interrupted (Ctrl-C) while still starting",
        },
    )

    users = command_group(commands, "users", "console accounts")
    add = users.add_parser(
        "add", help="add an account; the password is read from stdin", description=""
    )
    add.add_argument("name", help="user name (letters, digits, '.', '_', '-')")
    add.add_argument(
        "--role",
        required=True,
        choices=["operator", "supervisor", "auditor"],
        help="operator: reviews alerts; supervisor: also users and devices; auditor: reads",
    )
    _add_db(add)
    add.set_defaults(handler=_users_add)
    listing = users.add_parser("list", help="the accounts and their roles")
    _add_db(listing)
    listing.add_argument(
        "--json", action="store_true", help="print one JSON object instead of text"
    )
    listing.set_defaults(handler=_users_list)

    tokens = command_group(commands, "tokens", "API tokens")
    create = tokens.add_parser(
        "create", help="a new API token acting as user NAME (printed as the last line)"
    )
    create.add_argument("name", help="the user the token acts as")
    create.add_argument("--label", help="what the token is for")
    _add_db(create)
    create.set_defaults(handler=_tokens_create)

    imp = commands.add_parser(
        "import-list",
        help="load a list's entry details and reference thumbnails (they never go to devices)",
    )
    imp.add_argument("bundle", type=Path, help="a full watchlist bundle")
    imp.add_argument("--photos", type=Path, metavar="DIR", help="the hub's photo folder")
    imp.add_argument(
        "--details",
        type=Path,
        metavar="FILE",
        help="the signed entry details `edge watchlist build` wrote (default: "
        "BUNDLE.dispatch.json; without it, an old bundle's own fields)",
    )
    imp.add_argument(
        "--pubkey",
        type=Path,
        help="trusted key (default: watchlist.public_key, else the keys `edge keys trust` "
        "installed)",
    )
    imp.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    _add_db(imp)
    imp.set_defaults(handler=_import_list)

    migrate = commands.add_parser("migrate", help="create or upgrade the database schema")
    _add_db(migrate)
    migrate.set_defaults(handler=_migrate)


def _serve(args: argparse.Namespace) -> int:
    from edge.services.dispatch import DispatchServer

    host = port = None
    if args.listen:
        try:
            host, port = parse_broker(args.listen)
        except ConfigError as exc:
            raise ConfigError(f"--listen {args.listen!r}: expected HOST:PORT") from exc
    config = _config(args, host=host, port=port)
    return DispatchServer(config, state_dir=args.state_dir).run()


def _read_password() -> str:
    if sys.stdin.isatty():
        first = getpass.getpass("password: ")
        if getpass.getpass("again: ") != first:
            raise DispatchError("the passwords differ")
        return first
    return sys.stdin.readline().rstrip("\r\n")


def _users_add(args: argparse.Namespace) -> int:
    from edge.dispatch.auth import Accounts

    store, config = _store(args)
    with store:
        Accounts(store, config.dispatch).add_user(args.name, args.role, _read_password(), by="cli")
    print(f"added {args.role} {args.name}")
    return 0


def _users_list(args: argparse.Namespace) -> int:
    from edge.dispatch.auth import Accounts

    store, config = _store(args)
    with store:
        users = Accounts(store, config.dispatch).users()
    if args.json:
        print(json.dumps(users, sort_keys=True))
    for user in [] if args.json else users:
        disabled = "\tdisabled" if user["disabled"] else ""
        print(f"{user['name']}\t{user['role']}{disabled}")
    return 0


def _tokens_create(args: argparse.Namespace) -> int:
    from edge.dispatch.auth import Accounts

    store, config = _store(args)
    with store:
        token = Accounts(store, config.dispatch).create_token(args.name, label=args.label, by="cli")
    print(f"API token for {args.name} (shown once; send it as 'Authorization: Bearer <token>'):")
    print(token)
    return 0


def _import_list(args: argparse.Namespace) -> int:
    from edge.dispatch.importer import import_list
    from edge.watchlist import keys as keyring
    from edge.watchlist.bundle import read_unverified
    from edge.watchlist.details import details_path

    store, config = _store(args)
    trusted = keyring.trusted_key(
        args.pubkey, config.watchlist.public_key, config.paths(args.state_dir).trust
    )
    if isinstance(trusted, keyring.KeySet):  # the details file is checked with the same key
        trusted = trusted.for_signer(read_unverified(args.bundle).signing_key_id)
    with store:
        report = import_list(
            store,
            args.bundle,
            trusted,
            photos=args.photos,
            thumbnail_px=config.dispatch.thumbnail_px,
            by="cli",
            details=args.details,
        )
    if args.json:
        print(json.dumps(report.as_dict(), sort_keys=True))
        return 0
    print(
        f"imported {report.list_id} v{report.version}: "
        f"{counted(report.entries, 'entry', 'entries')} "
        f"({report.with_details} with a reason, legal basis or case reference), "
        f"{counted(report.photos, 'reference photo', 'reference photos')} "
        f"({report.faces} with the enrolled face)"
    )
    if report.details_from_bundle:
        note = (
            "taken from the bundle itself (built before they moved out of bundles)"
            if report.with_details
            else "none imported (the bundle carries none; give --details FILE)"
        )
        print(
            f"  no details file {details_path(args.bundle)}: entry details {note}", file=sys.stderr
        )
    else:
        print(f"  entry details from {report.details} (signature checked)")
    for missing in report.missing:
        print(f"  no photo file with digest {missing}", file=sys.stderr)
    for why in report.without_face:
        print(f"  no enrolled face crop for {why}", file=sys.stderr)
    return 0


def _migrate(args: argparse.Namespace) -> int:
    store, _ = _store(args)
    with store:
        revision = store.migrate()
    print(f"database {store.where}: schema at revision {revision}")
    return 0
