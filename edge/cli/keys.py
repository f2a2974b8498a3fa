"""``edge keys generate``: the hub's Ed25519 key pair for signing watchlist bundles.
``edge keys trust PUB.pem``: install the hub's public key in this device's trust store, which
every command that verifies bundles uses when neither --pubkey nor watchlist.public_key is given.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from edge.cli.args import Subparsers, add_common, command_group, config_from_args
from edge.demo import DEMO_PUBLIC_KEY
from edge.errors import WatchlistError
from edge.watchlist import keys as keyring


def cmd_keys_generate(args: argparse.Namespace) -> int:
    private_path, public_path = keyring.generate_keypair(args.out)
    key = keyring.load_public_key(public_path)
    print(f"private key {private_path} (mode 0600: keep it on the hub only)")
    print(f"public key  {public_path} (install on devices; key id {keyring.key_id(key)})")
    return 0


def cmd_keys_trust(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    store = config.paths(args.state_dir).trust
    key = keyring.load_public_key(args.public_key)
    if keyring.key_id(key) == keyring.key_id(keyring.load_public_key(DEMO_PUBLIC_KEY)):
        raise WatchlistError(
            f"{args.public_key} is the demo key: its private half ships with edge, so anyone can "
            "sign with it; pass it with --pubkey for a one-off run, never trust it"
        )
    kid, path, added = keyring.trust(store, args.public_key)
    count = len(keyring.trust_store_keys(store))
    print(f"{'trusted' if added else 'already trusted:'} key {kid} ({path})")
    print(f"{count} trusted key(s) in {store}")
    return 0


def register(subparsers: Subparsers) -> None:
    keys_sub = command_group(subparsers, "keys", "signing keys for watchlist bundles")
    gen = keys_sub.add_parser("generate", help="make an Ed25519 key pair for the hub")
    gen.add_argument("--out", type=Path, required=True, help="folder for the two PEM files")
    gen.set_defaults(handler=cmd_keys_generate)

    trust = keys_sub.add_parser(
        "trust",
        help="trust the hub's public key on this device (used when no --pubkey is given)",
        description="Copies the key into <state_dir>/trusted/<key id>.pem (mode 0644). Every "
        "command that verifies bundles (run, identify, watchlist install/status/verify, sync, "
        "hub publish) uses the trusted keys when neither --pubkey nor watchlist.public_key is "
        "given; with several, a bundle signed by any of them is accepted.",
    )
    trust.add_argument("public_key", type=Path, metavar="PUB.pem", help="the hub's public key")
    add_common(trust, state_dir="the trust store's state directory")
    trust.set_defaults(handler=cmd_keys_trust)
