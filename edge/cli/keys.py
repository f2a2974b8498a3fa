"""``edge keys generate``: the hub's Ed25519 key pair for signing watchlist bundles."""

from __future__ import annotations

import argparse
from pathlib import Path

from edge.cli.args import Subparsers, command_group
from edge.watchlist import keys as keyring


def cmd_keys_generate(args: argparse.Namespace) -> int:
    private_path, public_path = keyring.generate_keypair(args.out)
    key = keyring.load_public_key(public_path)
    print(f"private key {private_path} (mode 0600: keep it on the hub only)")
    print(f"public key  {public_path} (install on devices; key id {keyring.key_id(key)})")
    return 0


def register(subparsers: Subparsers) -> None:
    keys_sub = command_group(subparsers, "keys", "signing keys for watchlist bundles")
    gen = keys_sub.add_parser("generate", help="make an Ed25519 key pair for the hub")
    gen.add_argument("--out", type=Path, required=True, help="folder for the two PEM files")
    gen.set_defaults(handler=cmd_keys_generate)
