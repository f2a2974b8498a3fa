"""`import-list` takes entry details from the signed details file beside the bundle."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from dispatch_helpers import sqlite_store
from watchlist_helpers import (
    Person,
    build_next,
    build_old_style,
    build_with_details,
    make_keys,
    people,
)

from edge.dispatch.importer import BUNDLE_DETAILS, import_list
from edge.dispatch.store import Store
from edge.errors import BundleError, DispatchError
from edge.watchlist.details import details_path, list_details, write_details
from edge.watchlist.writer import EntryFields


def _persons() -> list[Person]:
    persons = people(5, 2)
    persons[0].fields = EntryFields("demo wanted person", "demo warrant 7", "CASE-42")
    return persons


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Any, Any]:
    priv, pub, _, _ = make_keys(tmp_path)
    return priv, pub


@pytest.fixture
def store(tmp_path: Path) -> Any:
    with sqlite_store(tmp_path) as s:
        yield s


def _import(store: Store, bundle: Path, pub: Any, **kw: Any) -> Any:
    return import_list(store, bundle, pub, photos=None, thumbnail_px=64, by="test", **kw)


def test_details_come_from_the_signed_file_beside_the_bundle(
    tmp_path: Path, keys: tuple[Any, Any], store: Store
) -> None:
    priv, pub = keys
    _, sidecar = build_with_details(tmp_path / "list", _persons(), priv)
    report = _import(store, tmp_path / "list", pub)
    assert report.details == str(sidecar) and not report.details_from_bundle
    assert report.entries == 2 and report.with_details == 1
    entry = store.entry("test-list", "0")
    assert entry is not None and entry.label == "person-0000"
    assert (entry.reason, entry.legal_basis, entry.case_ref) == (
        "demo wanted person",
        "demo warrant 7",
        "CASE-42",
    )
    other = store.entry("test-list", "1")
    assert other is not None and other.reason is None and other.case_ref is None
    assert report.as_dict()["details"] == str(sidecar)


def test_an_explicit_details_file(tmp_path: Path, keys: tuple[Any, Any], store: Store) -> None:
    priv, pub = keys
    _, sidecar = build_with_details(tmp_path / "list", _persons(), priv)
    moved = tmp_path / "elsewhere.json"
    sidecar.rename(moved)
    report = _import(store, tmp_path / "list", pub, details=moved)
    assert report.details == str(moved)
    entry = store.entry("test-list", "0")
    assert entry is not None and entry.case_ref == "CASE-42"
    with pytest.raises(BundleError, match="no such file"):
        _import(store, tmp_path / "list", pub, details=tmp_path / "missing.json")


def test_tampered_or_foreign_details_are_refused_and_nothing_is_imported(
    tmp_path: Path, keys: tuple[Any, Any], store: Store
) -> None:
    priv, pub = keys
    _, sidecar = build_with_details(tmp_path / "v1", _persons(), priv, version=1)
    _, sidecar2 = build_with_details(tmp_path / "v2", _persons()[:1], priv, version=2)
    sidecar.write_bytes(sidecar.read_bytes().replace(b"CASE-42", b"CASE-43"))
    with pytest.raises(BundleError) as err:
        _import(store, tmp_path / "v1", pub)
    assert err.value.check == "details" and "signature" in str(err.value)
    with pytest.raises(BundleError) as err:
        _import(store, tmp_path / "v1", pub, details=sidecar2)
    assert err.value.check == "details" and "belong to list test-list version 2" in str(err.value)
    assert store.watchlists() == [] and store.entry("test-list", "0") is None


def test_an_old_bundle_without_a_details_file_falls_back_to_its_own_fields(
    tmp_path: Path, keys: tuple[Any, Any], store: Store
) -> None:
    priv, pub = keys
    build_old_style(tmp_path / "old", _persons(), priv)
    assert not details_path(tmp_path / "old").exists()
    report = _import(store, tmp_path / "old", pub)
    assert report.details == BUNDLE_DETAILS and report.details_from_bundle
    assert report.with_details == 1
    entry = store.entry("test-list", "0")
    assert entry is not None and entry.case_ref == "CASE-42"


def test_a_delta_is_refused_and_its_full_twin_takes_the_shared_details(
    tmp_path: Path, keys: tuple[Any, Any], store: Store
) -> None:
    priv, pub = keys
    build_with_details(tmp_path / "v1", _persons(), priv, version=1)
    persons = _persons()
    persons[1].fields = EntryFields(case_ref="CASE-8")
    delta, full, content = build_next(
        tmp_path / "v1", persons, priv, pub, 2, tmp_path / "v2.delta", tmp_path / "v2"
    )
    fields = {p.label: p.fields for p in persons}
    write_details(
        details_path(tmp_path / "v2"), list_details(content, fields, [delta, full], priv), priv
    )
    with pytest.raises(DispatchError, match="is a delta"):
        _import(store, tmp_path / "v2.delta", pub)
    report = _import(store, tmp_path / "v2", pub)
    assert report.version == 2 and report.with_details == 2
    entry = store.entry("test-list", str(content.entries[1].id))
    assert entry is not None and entry.case_ref == "CASE-8"
