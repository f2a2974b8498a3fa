"""The bundle format: manifest, entries table, signing and verification, deltas."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from input_helpers import dev_zero, fifo, sparse
from watchlist_helpers import DIM, NOW, build_full, build_next, make_keys, meta, people

from edge.errors import BundleError, WatchlistError
from edge.watchlist import keys as keyring
from edge.watchlist.bundle import load_full, read_bundle, read_unverified
from edge.watchlist.entries import parse_entries
from edge.watchlist.manifest import ENTRIES, INDEX, MANIFEST, MAX_VERSION, SIGNATURE, parse_manifest
from edge.watchlist.writer import assemble, diff


def test_full_bundle_layout_and_manifest(tmp_path: Path) -> None:
    priv, pub, _, _ = make_keys(tmp_path)
    written = build_full(tmp_path / "b", people(1, 4, templates=3), priv, 7)
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == [
        ENTRIES,
        INDEX,
        MANIFEST,
        SIGNATURE,
    ]
    raw = (tmp_path / "b" / MANIFEST).read_bytes()
    doc = json.loads(raw)
    # canonical JSON: what is signed is exactly the sorted, compact serialisation
    assert raw == json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
    assert doc["version"] == 7 and doc["kind"] == "full"
    assert doc["counts"] == {"entries": 4, "templates": 12}
    assert doc["index"]["dtype"] == "i8" and doc["index"]["metric"] == "cos"
    assert doc["embedding"]["model"] == "mobilefacenet"
    assert set(doc["files"]) == {INDEX, ENTRIES}
    assert doc["signing_key_id"] == keyring.key_id(pub)
    assert len((tmp_path / "b" / SIGNATURE).read_bytes()) == 64
    verified = read_bundle(tmp_path / "b", pub)
    assert verified.manifest == written.manifest
    index, content = load_full(verified)
    assert len(index) == 12 and [e.label for e in content.entries][:2] == [
        "person-0000",
        "person-0001",
    ]
    assert read_unverified(tmp_path / "b") == written.manifest


def test_f16_bundle(tmp_path: Path) -> None:
    priv, pub, _, _ = make_keys(tmp_path)
    build_full(tmp_path / "b", people(1, 3), priv, 1, dtype="f16")
    index, content = load_full(read_bundle(tmp_path / "b", pub))
    assert content.vectors.dtype == np.float16 and index.params.dtype == "f16"


def test_manifest_validation_is_strict(tmp_path: Path) -> None:
    priv, _, _, _ = make_keys(tmp_path)
    build_full(tmp_path / "b", people(1, 2), priv, 1)
    good = json.loads((tmp_path / "b" / MANIFEST).read_bytes())
    edits = {
        "unknown format": lambda d: d.update(format="other/2"),
        "bad kind": lambda d: d.update(kind="partial"),
        "bad list id": lambda d: d.update(list_id="a b"),
        "version zero": lambda d: d.update(version=0),
        "version as text": lambda d: d.update(version="3"),
        "bad time": lambda d: d.update(created="yesterday"),
        "window reversed": lambda d: d.update(valid_until=d["valid_from"]),
        "bad metric": lambda d: d["index"].update(metric="l2"),
        "bad dtype": lambda d: d["index"].update(dtype="f64"),
        "bad sha": lambda d: d["embedding"].update(sha256="xyz"),
        "extra file": lambda d: d["files"].update({"x.bin": {"sha256": "0" * 64, "bytes": 1}}),
        "missing field": lambda d: d.pop("content"),
        "full with delta": lambda d: d.update(delta={}),
        "entries hash differs": lambda d: d["content"].update(entries_sha256="1" * 64),
        "bad policy": lambda d: d.update(threshold_policy={"mode": "magic"}),
        "unknown field": lambda d: d.update(cameras=["gate-2"]),
    }
    for name, edit in edits.items():
        doc = json.loads(json.dumps(good))
        edit(doc)
        with pytest.raises(BundleError) as err:
            parse_manifest(json.dumps(doc).encode())
        assert err.value.check == "manifest", name
    for raw in (b"", b"[]", b"\xff\xfe", b"{"):
        with pytest.raises(BundleError):
            parse_manifest(raw)


def test_entries_table_validation(tmp_path: Path) -> None:
    priv, _, _, _ = make_keys(tmp_path)
    build_full(tmp_path / "b", people(1, 2), priv, 1)
    good = json.loads((tmp_path / "b" / ENTRIES).read_bytes())
    parse_entries(json.dumps(good).encode(), "ok")
    edits = [
        lambda d: d.update(format="x"),
        lambda d: d["entries"][0].update(id=-1),
        lambda d: d["entries"][0].update(colour="red"),
        lambda d: d["entries"][0]["templates"][0].update(key=12345),
        lambda d: d["entries"][0]["templates"][0].update(photo="nothex"),
        lambda d: d["entries"][0].update(templates=[]),
        lambda d: d["entries"][0].update(added="2025-01-01"),  # not canonical
        lambda d: d["entries"][1].update(label=d["entries"][0]["label"]),
        lambda d: d["entries"].reverse(),
    ]
    for edit in edits:
        doc = json.loads(json.dumps(good))
        edit(doc)
        with pytest.raises(BundleError) as err:
            parse_entries(json.dumps(doc).encode(), "entries.json")
        assert err.value.check == "entries"


def test_keys_must_be_ed25519_pem(tmp_path: Path) -> None:
    (tmp_path / "junk.pem").write_text("hello")
    with pytest.raises(WatchlistError, match="not a PEM public key"):
        keyring.load_public_key(tmp_path / "junk.pem")
    with pytest.raises(WatchlistError, match="not an unencrypted PEM private key"):
        keyring.load_private_key(tmp_path / "junk.pem")
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    (tmp_path / "rsa.pub").write_bytes(
        rsa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    with pytest.raises(WatchlistError, match="not an Ed25519 public key"):
        keyring.load_public_key(tmp_path / "rsa.pub")
    with pytest.raises(WatchlistError, match="cannot read"):
        keyring.load_public_key(tmp_path / "missing.pub")


def test_delta_contains_only_the_changes(tmp_path: Path) -> None:
    priv, pub, _, _ = make_keys(tmp_path)
    p1 = people(1, 10)
    build_full(tmp_path / "v1", p1, priv, 1)
    p2 = p1[2:] + people(2, 1, prefix="new")
    p2[0] = type(p2[0])(p2[0].label, p2[0].vectors[:1], p2[0].photos[:1])  # one photo fewer
    delta, full, content = build_next(
        tmp_path / "v1", p2, priv, pub, 2, tmp_path / "d", tmp_path / "f"
    )
    d = delta.manifest.delta
    assert d is not None
    assert list(d.remove_entries) == [0, 1, 2]  # two people left, one changed
    assert (d.add_entries, d.add_templates) == (2, 3)  # the changed one (1) + the new one (2)
    assert delta.manifest.templates_sha256 == full.manifest.templates_sha256
    assert delta.manifest.entries_sha256 == full.manifest.entries_sha256
    # entry ids are stable: the newcomer gets the next free id, existing people keep theirs
    by_label = {e.label: e.id for e in content.entries}
    assert by_label["person-0003"] == 3 and by_label["new-0000"] == 10
    assert delta.manifest.next_entry_id == 11
    # the delta is small
    delta_bytes = sum(p.stat().st_size for p in (tmp_path / "d").iterdir())
    full_bytes = sum(p.stat().st_size for p in (tmp_path / "f").iterdir())
    assert delta_bytes < full_bytes


def test_diff_of_identical_lists_is_empty() -> None:
    specs = [p.spec() for p in people(3, 5)]
    a, _ = assemble(specs, "i8", DIM, NOW)
    removes, adds = diff(a, a)
    assert removes == [] and adds.entries == ()


def test_delta_refuses_a_model_change(tmp_path: Path) -> None:
    from watchlist_helpers import OTHER_MODEL

    priv, pub, _, _ = make_keys(tmp_path)
    build_full(tmp_path / "v1", people(1, 3), priv, 1)
    with pytest.raises(WatchlistError, match="embedding model"):
        build_next(
            tmp_path / "v1",
            people(1, 3),
            priv,
            pub,
            2,
            tmp_path / "d",
            tmp_path / "f",
            model=OTHER_MODEL,
        )
    with pytest.raises(WatchlistError, match="above the base"):
        build_next(tmp_path / "v1", people(1, 3), priv, pub, 1, tmp_path / "d2", tmp_path / "f2")
    assert meta(1).list_id == "test-list"


# --- hardening (issue 12) ---------------------------------------------------------------------

DEEP = b"[" * 100_000 + b"]" * 100_000


def test_versions_are_bounded_by_2_to_the_53(tmp_path: Path) -> None:
    priv, pub, _, _ = make_keys(tmp_path)
    build_full(tmp_path / "b", people(1, 2), priv, MAX_VERSION)  # the largest is fine
    assert read_bundle(tmp_path / "b", pub).manifest.version == MAX_VERSION
    good = json.loads((tmp_path / "b" / MANIFEST).read_bytes())
    for version in (MAX_VERSION + 1, 2**70):
        doc = {**good, "version": version}
        with pytest.raises(BundleError, match="2\\^53") as err:
            parse_manifest(json.dumps(doc).encode())
        assert err.value.check == "manifest"
    with pytest.raises(WatchlistError, match="2\\^53"):
        build_full(tmp_path / "huge", people(1, 2), priv, 2**70)
    assert not (tmp_path / "huge").exists()


def test_a_deeply_nested_manifest_is_refused_by_its_signature_before_it_is_parsed(
    tmp_path: Path,
) -> None:
    priv, pub, _, _ = make_keys(tmp_path)
    build_full(tmp_path / "b", people(1, 2), priv, 1)
    (tmp_path / "b" / MANIFEST).write_bytes(DEEP)
    with pytest.raises(BundleError) as err:
        read_bundle(tmp_path / "b", pub)
    assert err.value.check == "signature"
    # parsed anyway (`watchlist show` reads it unverified): a manifest refusal, not a crash
    with pytest.raises(BundleError) as err:
        read_unverified(tmp_path / "b")
    assert err.value.check == "manifest" and "nested" in str(err.value)


def test_the_signer_named_in_a_refusal_comes_from_the_raw_bytes(tmp_path: Path) -> None:
    priv, _, _, _ = make_keys(tmp_path)
    _, other, _, _ = make_keys(tmp_path / "other")
    build_full(tmp_path / "b", people(1, 2), priv, 1)
    with pytest.raises(BundleError, match=f"signed by key {keyring.key_id(priv.public_key())}"):
        read_bundle(tmp_path / "b", other)


def test_the_builder_refuses_a_list_that_expires_before_it_is_built(tmp_path: Path) -> None:
    priv, _, _, _ = make_keys(tmp_path)
    with pytest.raises(WatchlistError, match="before it is built"):
        build_full(
            tmp_path / "b",
            people(1, 2),
            priv,
            1,
            valid_from=NOW - timedelta(days=3),
            valid_until=NOW - timedelta(seconds=1),
        )
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: dev_zero(p), "character device"),
        (lambda p: fifo(p), "FIFO"),
        (lambda p: sparse(p, keyring.MAX_KEY_BYTES + 1), "larger than"),
    ],
    ids=["dev-zero", "fifo", "huge"],
)
def test_a_key_file_that_is_not_a_small_regular_file_is_refused_unread(
    tmp_path: Path, make: object, message: str
) -> None:
    path = make(tmp_path / "hub.pub")  # type: ignore[operator]
    with pytest.raises(WatchlistError, match=message):
        keyring.load_public_key(path)
    with pytest.raises(WatchlistError, match=message):
        keyring.load_private_key(path)


def test_a_bundle_file_that_is_not_a_regular_file_is_refused(tmp_path: Path) -> None:
    priv, pub, _, _ = make_keys(tmp_path)
    build_full(tmp_path / "b", people(1, 2), priv, 1)
    size = (tmp_path / "b" / ENTRIES).stat().st_size
    (tmp_path / "b" / ENTRIES).unlink()
    fifo(tmp_path / "b" / ENTRIES)
    with pytest.raises(BundleError, match="not a regular file") as err:
        read_bundle(tmp_path / "b", pub)
    assert err.value.check == "files" and size > 0
    (tmp_path / "b" / SIGNATURE).unlink()
    fifo(tmp_path / "b" / SIGNATURE)
    with pytest.raises(BundleError, match="FIFO") as err:
        read_bundle(tmp_path / "b", pub)
    assert err.value.check == "files"
