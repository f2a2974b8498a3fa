"""The dispatch details file: entry texts stay out of the device bundle, signed beside it."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from watchlist_helpers import (
    DIM,
    NOW,
    Person,
    build_next,
    build_old_style,
    build_with_details,
    make_keys,
    people,
    store,
)

from edge.errors import BundleError, WatchlistError
from edge.watchlist import keys as keyring
from edge.watchlist.bundle import load_full, read_bundle
from edge.watchlist.details import (
    check_details_out,
    details_path,
    list_details,
    read_details,
    write_details,
)
from edge.watchlist.details_document import DETAILS_FORMAT, DETAILS_FORMAT_1
from edge.watchlist.entries import canonical_json
from edge.watchlist.manifest import ENTRIES, MANIFEST, SIGNATURE
from edge.watchlist.writer import EntryFields, assemble

TEXTS = ("court order 17/2025", "Art. 6(1)(e) GDPR", "CASE-2025-0042")


def _persons() -> list[Person]:
    persons = people(1, 3)
    persons[0].fields = EntryFields(*TEXTS, expires="2025-12-31T00:00:00Z")
    persons[2].fields = EntryFields(reason="wanted: theft, repeated")
    return persons


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Any, Any]:
    priv, pub, _, _ = make_keys(tmp_path)
    return priv, pub


def _refusal(excinfo: pytest.ExceptionInfo[BundleError]) -> str:
    message = str(excinfo.value)
    assert excinfo.value.check == "details" and "\n" not in message
    return message


def test_the_device_bundle_holds_no_entry_texts(tmp_path: Path, keys: tuple[Any, Any]) -> None:
    priv, pub = keys
    bundle, sidecar = build_with_details(tmp_path / "list", _persons(), priv)
    raw = (tmp_path / "list" / ENTRIES).read_bytes()
    for text in (*TEXTS, "theft", "reason", "legal_basis", "case_ref"):
        assert text.encode() not in raw
    assert b'"expires":"2025-12-31T00:00:00Z"' in raw  # devices still stop matching it
    assert sorted(p.name for p in (tmp_path / "list").iterdir()) == sorted(
        [ENTRIES, "index.usearch", MANIFEST, SIGNATURE]
    )
    _, content = load_full(read_bundle(tmp_path / "list", pub))
    assert all(e.reason is e.legal_basis is e.case_ref is None for e in content.entries)
    # the texts are beside the bundle, outside its folder
    assert sidecar == tmp_path / "list.dispatch.json" and sidecar.parent == tmp_path
    assert bundle.manifest.entry_count == 3


def test_details_are_signed_canonical_and_name_the_bundle(
    tmp_path: Path, keys: tuple[Any, Any]
) -> None:
    priv, pub = keys
    bundle, sidecar = build_with_details(tmp_path / "list", _persons(), priv, version=4)
    raw = sidecar.read_bytes()
    envelope = json.loads(raw)
    assert canonical_json(envelope) == raw
    assert set(envelope) == {"format", "signed", "signature"}
    signed = envelope["signed"].encode()
    keyring.verify_signature(pub, signed, base64.b64decode(envelope["signature"]), None)
    doc = json.loads(signed)
    assert canonical_json(doc) == signed and doc["format"] == DETAILS_FORMAT
    assert (doc["list_id"], doc["version"]) == ("test-list", 4)
    assert doc["bundles"] == [{"kind": "full", "manifest_sha256": bundle.manifest_sha256}]
    assert doc["signing_key_id"] == keyring.key_id(pub)
    first = doc["entries"][0]
    assert (first["reason"], first["legal_basis"], first["case_ref"]) == TEXTS
    assert first["expires"] == "2025-12-31T00:00:00Z" and first["added"] == "2025-06-01T12:00:00Z"
    assert set(doc["entries"][1]) == {"id", "label", "added"}  # every entry, even without texts

    details = read_details(sidecar, pub, bundle)
    _, content = load_full(bundle)
    by_id = details.for_entries(content.entries, sidecar)
    assert by_id[0].case_ref == "CASE-2025-0042"
    assert by_id[2].reason == "wanted: theft, repeated"
    assert by_id[1].reason is None


@pytest.mark.parametrize(
    "tamper",
    [
        lambda doc: doc["entries"][0].update(case_ref="CASE-9999"),
        lambda doc: doc["entries"].pop(),
        lambda doc: doc.update(version=5),
    ],
)
def test_a_changed_byte_in_the_details_is_refused(
    tmp_path: Path, keys: tuple[Any, Any], tamper: Any
) -> None:
    priv, pub = keys
    bundle, sidecar = build_with_details(tmp_path / "list", _persons(), priv)
    envelope = json.loads(sidecar.read_bytes())
    doc = json.loads(envelope["signed"])
    tamper(doc)
    envelope["signed"] = canonical_json(doc).decode()
    sidecar.write_bytes(canonical_json(envelope))
    with pytest.raises(BundleError) as err:
        read_details(sidecar, pub, bundle)
    assert "signature does not match" in _refusal(err)


def test_a_flipped_byte_and_garbage_are_refused(tmp_path: Path, keys: tuple[Any, Any]) -> None:
    priv, pub = keys
    bundle, sidecar = build_with_details(tmp_path / "list", _persons(), priv)
    raw = bytearray(sidecar.read_bytes())
    at = raw.index(b"CASE-2025-0042")
    raw[at] = ord("X")
    sidecar.write_bytes(bytes(raw))
    with pytest.raises(BundleError) as err:
        read_details(sidecar, pub, bundle)
    assert "signature" in _refusal(err)
    for garbage in (b"", b"[]", b"\xff\xfe", b'{"format":"edge-watchlist-details/1"}'):
        sidecar.write_bytes(garbage)
        with pytest.raises(BundleError) as err:
            read_details(sidecar, pub, bundle)
        _refusal(err)
    sidecar.unlink()
    with pytest.raises(BundleError) as err:
        read_details(sidecar, pub, bundle)
    assert "no such file" in _refusal(err)


def test_details_of_another_bundle_are_refused(tmp_path: Path, keys: tuple[Any, Any]) -> None:
    priv, pub = keys
    _, sidecar1 = build_with_details(tmp_path / "v1", _persons(), priv, version=1)
    v2, sidecar2 = build_with_details(tmp_path / "v2", _persons(), priv, version=2)
    with pytest.raises(BundleError) as err:
        read_details(sidecar1, pub, v2)
    message = _refusal(err)
    assert "belong to list test-list version 1" in message and "version 2" in message
    # the same list id and version, other contents: another bundle
    again, _ = build_with_details(tmp_path / "v2-again", _persons()[:2], priv, version=2)
    with pytest.raises(BundleError) as err:
        read_details(sidecar2, pub, again)
    assert "belong to" in _refusal(err)


def test_details_signed_with_another_key_are_refused(tmp_path: Path, keys: tuple[Any, Any]) -> None:
    priv, pub = keys
    other_priv, _, _, _ = make_keys(tmp_path / "other")
    bundle, sidecar = build_with_details(tmp_path / "list", _persons(), priv)
    _, content = load_full(bundle)
    sidecar.unlink()
    fields = {p.label: p.fields for p in _persons()}
    write_details(sidecar, list_details(content, fields, [bundle], other_priv), other_priv)
    with pytest.raises(BundleError) as err:
        read_details(sidecar, pub, bundle)
    assert f"signed by key {keyring.key_id(other_priv.public_key())}" in _refusal(err)


def test_a_manifest_never_passes_for_details(tmp_path: Path, keys: tuple[Any, Any]) -> None:
    """The same key signs both: a manifest and its signature, dressed as details, are refused."""
    priv, pub = keys
    bundle, sidecar = build_with_details(tmp_path / "list", _persons(), priv)
    envelope = {
        "format": DETAILS_FORMAT,
        "signed": (tmp_path / "list" / MANIFEST).read_text(),
        "signature": base64.b64encode((tmp_path / "list" / SIGNATURE).read_bytes()).decode(),
    }
    sidecar.write_bytes(canonical_json(envelope))
    with pytest.raises(BundleError) as err:
        read_details(sidecar, pub, bundle)
    assert "not edge-watchlist-details/1" in _refusal(err)


def test_details_that_do_not_describe_the_entries_are_refused(
    tmp_path: Path, keys: tuple[Any, Any]
) -> None:
    priv, pub = keys
    bundle, sidecar = build_with_details(tmp_path / "list", _persons(), priv)
    _, content = load_full(bundle)
    fewer, _ = assemble([p.spec() for p in _persons()[:2]], "i8", DIM, NOW)
    sidecar.unlink()
    write_details(sidecar, list_details(fewer, {}, [bundle], priv), priv)
    details = read_details(sidecar, pub, bundle)  # signed and naming the bundle, but...
    with pytest.raises(BundleError) as err:
        details.for_entries(content.entries, sidecar)
    assert "not the bundle's entries" in _refusal(err)


def test_one_details_file_serves_a_delta_and_its_full_twin(
    tmp_path: Path, keys: tuple[Any, Any]
) -> None:
    priv, pub = keys
    build_with_details(tmp_path / "v1", _persons(), priv, version=1)
    persons = _persons()[1:] + people(2, 1, prefix="new")
    persons[0].fields = EntryFields(case_ref="CASE-7")
    delta, full, content = build_next(
        tmp_path / "v1", persons, priv, pub, 2, tmp_path / "v2.delta", tmp_path / "v2"
    )
    path = details_path(tmp_path / "v2")
    fields = {p.label: p.fields for p in persons}
    write_details(path, list_details(content, fields, [delta, full], priv), priv)
    for bundle in (delta, full):
        details = read_details(path, pub, bundle)
        assert {e.label for e in details.entries} == {e.label for e in content.entries}
        assert {b.kind for b in details.bundles} == {"full", "delta"}
    # the whole resulting list, not only the entries the delta adds
    assert len(details.entries) == 3 and details.entries[0].case_ref == "CASE-7"


def test_details_are_never_written_over_a_file_or_into_a_bundle(
    tmp_path: Path, keys: tuple[Any, Any]
) -> None:
    priv, _ = keys
    bundle, sidecar = build_with_details(tmp_path / "list", _persons(), priv)
    _, content = load_full(bundle)
    before = sidecar.read_bytes()
    with pytest.raises(WatchlistError, match="already exists"):
        write_details(sidecar, list_details(content, {}, [bundle], priv), priv)
    assert sidecar.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no staging
    with pytest.raises(WatchlistError, match="already exists"):
        check_details_out(sidecar, [tmp_path / "new"])
    with pytest.raises(WatchlistError, match="outside the bundle folder"):
        check_details_out(tmp_path / "new" / "details.json", [tmp_path / "new"])
    check_details_out(tmp_path / "new.dispatch.json", [tmp_path / "new"])
    assert details_path(tmp_path / "new") == tmp_path / "new.dispatch.json"
    assert details_path(tmp_path / "new" / "") == tmp_path / "new.dispatch.json"


def test_an_old_bundle_with_texts_stays_readable_and_matches(
    tmp_path: Path, keys: tuple[Any, Any]
) -> None:
    priv, pub = keys
    build_old_style(tmp_path / "old", _persons(), priv)
    raw = (tmp_path / "old" / ENTRIES).read_bytes()
    assert b"CASE-2025-0042" in raw
    s = store(tmp_path / "state", pub)
    s.install(tmp_path / "old")
    from edge.config.watchlist import WatchlistConfig

    watchlist = s.load(WatchlistConfig())
    assert watchlist is not None
    entry = watchlist.entries()[0]
    assert entry.case_ref == "CASE-2025-0042" and entry.reason == TEXTS[0]


def test_a_new_bundle_matches_without_texts(tmp_path: Path, keys: tuple[Any, Any]) -> None:
    from edge.config.watchlist import WatchlistConfig

    priv, pub = keys
    persons = _persons()
    build_with_details(tmp_path / "list", persons, priv)
    s = store(tmp_path / "state", pub)
    s.install(tmp_path / "list")
    watchlist = s.load(WatchlistConfig())
    assert watchlist is not None
    result = watchlist.identify(persons[0].vectors[0])
    assert result.match is not None and result.match.label == persons[0].label
    assert result.match.reason is None and result.match.case_ref is None
    assert result.match.to_json().keys() == {"entry_id", "label", "score"}


# --- which face of each photo was enrolled (format 2) ---------------------------------------------


def _faces_of(persons: list[Person]) -> dict[str, dict[str, tuple[int, int, int, int]]]:
    """Boxes for every photo of the first person, and one of the second's; none for the third."""
    return {
        persons[0].label: {p: (10 + n, 20, 110 + n, 140) for n, p in enumerate(persons[0].photos)},
        persons[1].label: {persons[1].photos[1]: (5, 6, 50, 70), "f" * 32: (1, 1, 2, 2)},
    }


def _with_faces(tmp_path: Path, priv: Any, pub: Any) -> tuple[Any, Path, list[Person]]:
    persons = _persons()
    bundle, sidecar = build_with_details(tmp_path / "list", persons, priv)
    _, content = load_full(bundle)
    sidecar.unlink()
    fields = {p.label: p.fields for p in persons}
    details = list_details(content, fields, [bundle], priv, _faces_of(persons))
    write_details(sidecar, details, priv)
    return bundle, sidecar, persons


def _sign_into(path: Path, doc: dict[str, Any], priv: Any, envelope_format: str) -> None:
    signed = canonical_json(doc)
    path.write_bytes(
        canonical_json(
            {
                "format": envelope_format,
                "signed": signed.decode(),
                "signature": base64.b64encode(keyring.sign(priv, signed)).decode(),
            }
        )
    )


def test_details_say_which_face_of_each_photo_was_enrolled(
    tmp_path: Path, keys: tuple[Any, Any]
) -> None:
    priv, pub = keys
    bundle, sidecar, persons = _with_faces(tmp_path, priv, pub)
    doc = json.loads(json.loads(sidecar.read_bytes())["signed"])
    assert doc["format"] == DETAILS_FORMAT == "edge-watchlist-details/2"
    assert doc["entries"][0]["faces"] == [
        {"photo": persons[0].photos[0], "box": [10, 20, 110, 140]},
        {"photo": persons[0].photos[1], "box": [11, 20, 111, 140]},
    ]
    # only the photos the entry's templates came from; an entry without any has no "faces"
    assert doc["entries"][1]["faces"] == [{"photo": persons[1].photos[1], "box": [5, 6, 50, 70]}]
    assert "faces" not in doc["entries"][2]
    details = read_details(sidecar, pub, bundle)
    _, content = load_full(bundle)
    by_id = details.for_entries(content.entries, sidecar)
    assert by_id[1].face_of(persons[1].photos[1]) == (5, 6, 50, 70)
    assert by_id[1].face_of(persons[1].photos[0]) is None and by_id[2].faces == ()


def test_a_format_1_details_file_is_still_read(tmp_path: Path, keys: tuple[Any, Any]) -> None:
    priv, pub = keys
    bundle, sidecar = build_with_details(tmp_path / "list", _persons(), priv)
    doc = json.loads(json.loads(sidecar.read_bytes())["signed"])
    doc["format"] = DETAILS_FORMAT_1
    _sign_into(sidecar, doc, priv, DETAILS_FORMAT_1)
    details = read_details(sidecar, pub, bundle)
    assert details.format == DETAILS_FORMAT_1 and details.entries[0].case_ref == TEXTS[2]
    assert all(e.faces == () for e in details.entries)
    # format 1 knows no faces: a file that says 1 and carries them is not one
    doc["entries"][0]["faces"] = [{"photo": "a" * 32, "box": [0, 0, 1, 1]}]
    _sign_into(sidecar, doc, priv, DETAILS_FORMAT_1)
    with pytest.raises(BundleError) as err:
        read_details(sidecar, pub, bundle)
    assert "unknown field(s) faces" in _refusal(err)


def test_the_envelope_and_the_document_name_one_format(
    tmp_path: Path, keys: tuple[Any, Any]
) -> None:
    priv, pub = keys
    bundle, sidecar, _ = _with_faces(tmp_path, priv, pub)
    doc = json.loads(json.loads(sidecar.read_bytes())["signed"])
    _sign_into(sidecar, doc, priv, DETAILS_FORMAT_1)
    with pytest.raises(BundleError) as err:
        read_details(sidecar, pub, bundle)
    assert "the file says edge-watchlist-details/1, its document" in _refusal(err)


def test_a_face_of_a_photo_the_entry_has_no_template_of_is_refused(
    tmp_path: Path, keys: tuple[Any, Any]
) -> None:
    priv, pub = keys
    bundle, sidecar, _ = _with_faces(tmp_path, priv, pub)
    doc = json.loads(json.loads(sidecar.read_bytes())["signed"])
    doc["entries"][2]["faces"] = [{"photo": "e" * 32, "box": [1, 2, 3, 4]}]
    _sign_into(sidecar, doc, priv, DETAILS_FORMAT)
    details = read_details(sidecar, pub, bundle)  # well formed and signed, but...
    _, content = load_full(bundle)
    with pytest.raises(BundleError) as err:
        details.for_entries(content.entries, sidecar)
    assert f"names the face of photo {'e' * 32}" in _refusal(err)


@pytest.mark.parametrize(
    "faces",
    [
        [],
        "box",
        [{"photo": "a" * 32}],
        [{"photo": "a" * 31, "box": [0, 0, 1, 1]}],
        [{"photo": "A" * 32, "box": [0, 0, 1, 1]}],
        [{"photo": "a" * 32, "box": [0, 0, 1]}],
        [{"photo": "a" * 32, "box": [5, 0, 5, 1]}],
        [{"photo": "a" * 32, "box": [0, 9, 1, 2]}],
        [{"photo": "a" * 32, "box": [-1, 0, 1, 1]}],
        [{"photo": "a" * 32, "box": [0, 0, 1, 70000]}],
        [{"photo": "a" * 32, "box": [False, 0, True, 1]}],
        [{"photo": "a" * 32, "box": [0.5, 0, 1, 1]}],
        [{"photo": "a" * 32, "box": [0, 0, 1, 1], "x": 1}],
        [{"photo": "a" * 32, "box": [0, 0, 1, 1]}, {"photo": "a" * 32, "box": [0, 0, 2, 2]}],
    ],
)
def test_malformed_faces_are_refused_in_one_line(
    tmp_path: Path, keys: tuple[Any, Any], faces: Any
) -> None:
    priv, pub = keys
    bundle, sidecar = build_with_details(tmp_path / "list", _persons(), priv)
    doc = json.loads(json.loads(sidecar.read_bytes())["signed"])
    doc["entries"][0]["faces"] = faces
    _sign_into(sidecar, doc, priv, DETAILS_FORMAT)
    with pytest.raises(BundleError) as err:
        read_details(sidecar, pub, bundle)
    message = _refusal(err)
    assert "entry 0 " in message and "face" in message, message
