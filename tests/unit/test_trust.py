"""The device trust store: `edge keys trust` installs hub keys that every verifier falls back to
when neither --pubkey nor watchlist.public_key is given."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from watchlist_helpers import build_full, make_keys, people

from edge.errors import BundleError, WatchlistError
from edge.watchlist import keys as keyring
from edge.watchlist.bundle import read_bundle


def test_trust_installs_a_key_atomically_and_once(tmp_path: Path) -> None:
    _, public, _, pub_path = make_keys(tmp_path / "hub")
    store = tmp_path / "state" / "trusted"
    kid, path, added = keyring.trust(store, pub_path)
    assert added and kid == keyring.key_id(public) and path == store / f"{kid}.pem"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert [p.name for p in store.iterdir()] == [path.name]  # nothing staged is left behind
    assert keyring.trust(store, pub_path) == (kid, path, False)
    assert keyring.key_id(keyring.load_public_key(path)) == kid


def test_the_store_is_the_fallback_after_pubkey_and_the_config(tmp_path: Path) -> None:
    _, public, _, pub_path = make_keys(tmp_path / "hub")
    _, other, _, other_path = make_keys(tmp_path / "other")
    store = tmp_path / "trusted"
    with pytest.raises(WatchlistError, match=r"edge keys trust PUB\.pem") as refused:
        keyring.trusted_key(None, None, store)
    assert str(refused.value).count("\n") == 0 and f"none in {store}" in str(refused.value)
    keyring.trust(store, pub_path)
    one = keyring.trusted_key(None, None, store)
    assert not isinstance(one, keyring.KeySet) and keyring.key_id(one) == keyring.key_id(public)
    # --pubkey and watchlist.public_key still win over the store
    given = keyring.trusted_key(other_path, None, store)
    assert not isinstance(given, keyring.KeySet)
    assert keyring.key_id(given) == keyring.key_id(other)
    configured = keyring.trusted_key(None, other_path, store)
    assert not isinstance(configured, keyring.KeySet)
    assert keyring.key_id(configured) == keyring.key_id(other)


def test_several_trusted_keys_accept_a_bundle_signed_by_any(tmp_path: Path) -> None:
    hub_a, public_a, _, pub_a = make_keys(tmp_path / "a")
    hub_b, public_b, _, pub_b = make_keys(tmp_path / "b")
    stranger, _, _, _ = make_keys(tmp_path / "c")
    store = tmp_path / "trusted"
    keyring.trust(store, pub_a)
    keyring.trust(store, pub_b)
    both = keyring.trusted_key(None, None, store)
    assert isinstance(both, keyring.KeySet)
    assert both.ids == sorted([keyring.key_id(public_a), keyring.key_id(public_b)])
    for n, key in enumerate((hub_a, hub_b)):
        bundle = build_full(tmp_path / f"list-{n}", people(n, 2), key, version=1)
        assert read_bundle(bundle.path, both).manifest.version == 1
    forged = build_full(tmp_path / "forged", people(7, 2), stranger, version=1)
    with pytest.raises(BundleError, match="signature check") as refused:
        read_bundle(forged.path, both)
    assert "but the trusted keys are" in str(refused.value)
    assert both.for_signer(keyring.key_id(public_b)) is both.keys[keyring.key_id(public_b)]
    with pytest.raises(BundleError, match="not among the trusted keys"):
        both.for_signer("0123456789abcdef")


def test_the_device_store_edge_sync_opens_uses_the_trusted_key(tmp_path: Path) -> None:
    """`edge sync` (and `edge run` on the installed list) open the store through open_store:
    no --pubkey and no watchlist.public_key needed once a key is trusted."""
    from edge.config import Config
    from edge.watchlist.install import open_store

    _, public, _, pub_path = make_keys(tmp_path / "hub")
    state = tmp_path / "state"
    with pytest.raises(WatchlistError, match="no trusted public key"):
        open_store(Config(), state_dir=state)
    keyring.trust(Config().paths(state).trust, pub_path)
    store = open_store(Config(), state_dir=state)
    assert not isinstance(store.public_key, keyring.KeySet)
    assert keyring.key_id(store.public_key) == keyring.key_id(public)
