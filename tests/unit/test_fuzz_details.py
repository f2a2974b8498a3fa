"""Fuzzing the dispatch details reader (formats 1 and 2, the enrolled faces included): files
nobody signed, and documents the hub's own key signed by mistake, give only BundleError, and
what it accepts is what the bundle's entries can use."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fuzz_helpers import documents, fuzz_settings, mutated, only_edge_errors
from hypothesis import given
from hypothesis import strategies as st
from watchlist_helpers import build_with_details, make_keys, people

from edge.errors import BundleError
from edge.watchlist import keys as keyring
from edge.watchlist.bundle import VerifiedBundle, load_full
from edge.watchlist.details import details_path, list_details, read_details, write_details
from edge.watchlist.details_document import DETAILS_FORMAT, DETAILS_FORMAT_1
from edge.watchlist.entries import canonical_json


@dataclass(frozen=True)
class Details:
    private_key: Any
    public_key: Any
    bundle: VerifiedBundle
    document: dict[str, Any]  # the signed document of a format 2 file, faces included
    work: Path


@pytest.fixture(scope="module")
def details(tmp_path_factory: pytest.TempPathFactory) -> Details:
    tmp = tmp_path_factory.mktemp("fuzz-details")
    priv, pub, _, _ = make_keys(tmp)
    persons = people(3, 2)
    bundle, sidecar = build_with_details(tmp / "list", persons, priv)
    _, content = load_full(bundle)
    sidecar.unlink()
    faces = {p.label: {p.photos[0]: (3, 4, 90, 120)} for p in persons}
    write_details(sidecar, list_details(content, {}, [bundle], priv, faces), priv)
    document = json.loads(json.loads(sidecar.read_bytes())["signed"])
    assert document["format"] == DETAILS_FORMAT and "faces" in document["entries"][0]
    return Details(priv, pub, bundle, document, tmp / "work")


def _read(details: Details, raw: bytes) -> None:
    path = details_path(details.work / "list")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(raw)
    error = only_edge_errors(lambda: _read_and_use(details, path))
    assert error is None or isinstance(error, BundleError), repr(error)


def _read_and_use(details: Details, path: Path) -> None:
    read = read_details(path, details.public_key, details.bundle)
    _, content = load_full(details.bundle)
    for entry in read.for_entries(content.entries, path).values():
        for face in entry.faces:
            x1, y1, x2, y2 = face.box
            assert x1 < x2 and y1 < y2 and min(face.box) >= 0


def _signed(details: Details, document: object, envelope_format: str) -> bytes:
    try:
        signed = canonical_json(document)
    except ValueError:
        signed = b"{"
    signature = keyring.sign(details.private_key, signed)
    return canonical_json(
        {
            "format": envelope_format,
            "signed": signed.decode("utf-8", "replace"),
            "signature": base64.b64encode(signature).decode(),
        }
    )


@fuzz_settings(0.5)
@given(data=st.data(), signature=st.binary(max_size=80))
def test_unsigned_details_are_refused_by_their_signature(
    details: Details, data: st.DataObject, signature: bytes
) -> None:
    signed = data.draw(documents(details.document))
    envelope = {
        "format": DETAILS_FORMAT,
        "signed": signed.decode("utf-8", "replace"),
        "signature": base64.b64encode(signature).decode(),
    }
    _read(details, canonical_json(envelope))


@fuzz_settings(0.5)
@given(data=st.data())
def test_envelopes_nobody_made_raise_only_bundle_errors(
    details: Details, data: st.DataObject
) -> None:
    valid = json.loads(_signed(details, details.document, DETAILS_FORMAT))
    _read(details, data.draw(documents(valid)))


@fuzz_settings(0.5)
@given(data=st.data(), old=st.booleans())
def test_signed_mistakes_raise_only_bundle_errors(
    details: Details, data: st.DataObject, old: bool
) -> None:
    # The hub's key signed a document that is not the format: the checks refuse it.
    document = data.draw(mutated(details.document))
    fmt = DETAILS_FORMAT_1 if old else DETAILS_FORMAT
    if old and isinstance(document, dict):
        document["format"] = fmt
    _read(details, _signed(details, document, fmt))
