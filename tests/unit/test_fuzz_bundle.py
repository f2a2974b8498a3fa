"""Fuzzing the bundle reader: the manifest parser, the signature check and read_bundle, on
bytes nobody signed and on manifests the hub's own key signed by mistake: only BundleError."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fuzz_helpers import documents, fuzz_settings, mutated, only_edge_errors
from hypothesis import given
from hypothesis import strategies as st
from watchlist_helpers import build_full, build_next, make_keys, people

from edge.errors import BundleError
from edge.watchlist import keys as keyring
from edge.watchlist.bundle import read_bundle
from edge.watchlist.entries import canonical_json
from edge.watchlist.manifest import MANIFEST, SIGNATURE, parse_manifest

DEEP = b"[" * 100_000 + b"]" * 100_000


@dataclass(frozen=True)
class Bundles:
    private_key: Any
    public_key: Any
    full: Path
    delta: Path
    work: Path

    def manifest(self, bundle: Path) -> Any:
        return json.loads((bundle / MANIFEST).read_bytes())


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> Bundles:
    tmp = tmp_path_factory.mktemp("fuzz-bundles")
    priv, pub, _, _ = make_keys(tmp)
    persons = people(1, 4)
    build_full(tmp / "v1", persons, priv, 1)
    build_next(
        tmp / "v1", persons[1:] + people(2, 2, prefix="new"), priv, pub, 2, tmp / "d", tmp / "v2"
    )
    return Bundles(priv, pub, tmp / "v1", tmp / "d", tmp / "work")


def _only_bundle_errors(call: object) -> None:
    error = only_edge_errors(call)  # type: ignore[arg-type]
    assert error is None or isinstance(error, BundleError), repr(error)


def _into(bundles: Bundles, source: Path, manifest: bytes, signature: bytes) -> Path:
    """A copy of ``source`` (once per test run) with this manifest and signature."""
    target = bundles.work / source.name
    if not target.exists():
        shutil.copytree(source, target)
    (target / MANIFEST).write_bytes(manifest)
    (target / SIGNATURE).write_bytes(signature)
    return target


def test_the_examples_are_refused_in_one_line(bundles: Bundles) -> None:
    for raw in (DEEP, b"", b"\xff"):
        _only_bundle_errors(lambda raw=raw: parse_manifest(raw))  # type: ignore[misc]
    path = _into(bundles, bundles.full, DEEP, bytes(64))
    with pytest.raises(BundleError, match="signature"):
        read_bundle(path, bundles.public_key)


@fuzz_settings()
@given(data=st.data(), which=st.booleans())
def test_parse_manifest_raises_only_bundle_errors(
    bundles: Bundles, data: st.DataObject, which: bool
) -> None:
    raw = data.draw(documents(bundles.manifest(bundles.full if which else bundles.delta)))
    _only_bundle_errors(lambda: parse_manifest(raw))


@fuzz_settings(0.5)
@given(data=st.data(), signature=st.binary(max_size=80), which=st.booleans())
def test_read_bundle_of_unsigned_bytes_refuses_them_by_their_signature(
    bundles: Bundles, data: st.DataObject, signature: bytes, which: bool
) -> None:
    source = bundles.full if which else bundles.delta
    manifest = data.draw(documents(bundles.manifest(source)))
    path = _into(bundles, source, manifest, signature)
    with pytest.raises(BundleError) as caught:
        read_bundle(path, bundles.public_key)
    assert caught.value.check in ("signature", "files")


@fuzz_settings(0.5)
@given(data=st.data(), which=st.booleans())
def test_read_bundle_of_signed_mistakes_raises_only_bundle_errors(
    bundles: Bundles, data: st.DataObject, which: bool
) -> None:
    # The hub's key signed a manifest that is not the format: parse and file checks refuse it.
    source = bundles.full if which else bundles.delta
    document = data.draw(mutated(bundles.manifest(source)))
    raw = canonical_json(document) if _encodable(document) else b"{"
    path = _into(bundles, source, raw, keyring.sign(bundles.private_key, raw))
    _only_bundle_errors(lambda: read_bundle(path, bundles.public_key))


def _encodable(document: object) -> bool:
    try:
        canonical_json(document)
    except ValueError:
        return False
    return True


@fuzz_settings()
@given(
    message=st.binary(max_size=256),
    signature=st.binary(max_size=80),
    hint=st.none() | st.text(max_size=70),
)
def test_verify_signature_raises_only_bundle_errors(
    bundles: Bundles, message: bytes, signature: bytes, hint: str | None
) -> None:
    _only_bundle_errors(
        lambda: keyring.verify_signature(bundles.public_key, message, signature, hint)
    )
    assert keyring.signer_hint(message) is None or len(keyring.signer_hint(message) or "") <= 64
