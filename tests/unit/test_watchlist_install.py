"""Device-side install: every bad bundle is refused by a named check and the old list stays."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from watchlist_helpers import (
    MODEL,
    NOW,
    OTHER_MODEL,
    FixedClock,
    build_full,
    build_next,
    make_keys,
    noisy,
    people,
    store,
)

from edge.config.watchlist import WatchlistConfig
from edge.errors import BundleError, WatchlistError
from edge.watchlist import keys as keyring
from edge.watchlist.entries import canonical_json
from edge.watchlist.install import CURRENT, RELEASES, WatchlistStore
from edge.watchlist.manifest import ENTRIES, INDEX, MANIFEST, SIGNATURE
from edge.watchlist.matcher import Watchlist
from edge.watchlist.writer import write_full


@dataclass
class World:
    tmp: Path
    priv: Any
    pub: Any
    v1: Path
    v2: Path
    v2_delta: Path
    persons_v1: list[Any]
    persons_v2: list[Any]


@pytest.fixture
def world(tmp_path: Path) -> World:
    priv, pub, _, _ = make_keys(tmp_path)
    p1 = people(1, 12)
    build_full(tmp_path / "v1", p1, priv, 1)
    p2 = p1[3:] + people(2, 4, prefix="new")
    build_next(tmp_path / "v1", p2, priv, pub, 2, tmp_path / "v2-delta", tmp_path / "v2")
    return World(
        tmp_path, priv, pub, tmp_path / "v1", tmp_path / "v2", tmp_path / "v2-delta", p1, p2
    )


def _load(s: WatchlistStore) -> Watchlist:
    wl = s.load(WatchlistConfig())
    assert wl is not None
    return wl


def _snapshot(s: WatchlistStore) -> tuple[str, list[str], list[tuple[int, float]]]:
    """What must not change after a refusal: the active link, the releases, the results."""
    link = os.readlink(s.root / CURRENT)
    releases = sorted(p.name for p in (s.root / RELEASES).iterdir())
    wl = _load(s)
    rng = np.random.default_rng(7)
    probes = noisy(rng, np.stack([p.vectors[0] for p in people(1, 12)]), 0.8)
    results = [(m.entry_id, round(m.score, 5)) for q in probes for m in wl.search(q, 2)]
    leftovers = [p.name for p in s.root.iterdir() if p.name.startswith(".staging")]
    assert leftovers == []
    return link, releases, results


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _flip(path: Path, offset: int | None = None) -> None:
    data = bytearray(path.read_bytes())
    at = len(data) // 2 if offset is None else offset
    data[at] ^= 0x01
    path.write_bytes(bytes(data))


def _resign(bundle: Path, priv: Any, edit: Callable[[dict[str, Any]], None]) -> None:
    """Change the manifest and sign it again with the hub's real key (a hub-side mistake)."""
    manifest = json.loads((bundle / MANIFEST).read_bytes())
    edit(manifest)
    raw = canonical_json(manifest)
    (bundle / MANIFEST).write_bytes(raw)
    (bundle / SIGNATURE).write_bytes(keyring.sign(priv, raw))


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _other_key_bundle(w: World, out: Path) -> Path:
    other_priv, _, _, _ = make_keys(w.tmp / "other")
    build_full(out, w.persons_v2, other_priv, 2)
    return out


TAMPER: dict[str, tuple[str, Callable[[World, Path], Path]]] = {
    "flipped byte in index": ("hash", lambda w, b: (_flip(b / INDEX), b)[1]),
    "flipped byte in entries": ("hash", lambda w, b: (_flip(b / ENTRIES), b)[1]),
    "flipped byte in manifest": ("signature", lambda w, b: (_flip(b / MANIFEST, 40), b)[1]),
    "flipped byte in signature": ("signature", lambda w, b: (_flip(b / SIGNATURE, 5), b)[1]),
    "missing index": ("files", lambda w, b: ((b / INDEX).unlink(), b)[1]),
    "missing entries": ("files", lambda w, b: ((b / ENTRIES).unlink(), b)[1]),
    "missing manifest": ("files", lambda w, b: ((b / MANIFEST).unlink(), b)[1]),
    "missing signature": ("files", lambda w, b: ((b / SIGNATURE).unlink(), b)[1]),
    "truncated index": ("hash", lambda w, b: (_truncate(b / INDEX), b)[1]),
    "truncated signature": (
        "signature",
        lambda w, b: ((b / SIGNATURE).write_bytes((b / SIGNATURE).read_bytes()[:32]), b)[1],
    ),
    "signed by another key": ("signature", lambda w, b: _other_key_bundle(w, b.with_name("ok"))),
    "manifest not JSON but signed": (
        "manifest",
        lambda w, b: (
            (b / MANIFEST).write_bytes(b"{not json"),
            (b / SIGNATURE).write_bytes(keyring.sign(w.priv, b"{not json")),
            b,
        )[2],
    ),
    "manifest lies about the templates": (
        "content",
        lambda w, b: (
            _resign(b, w.priv, lambda m: m["content"].update(templates_sha256="0" * 64)),
            b,
        )[1],
    ),
    "manifest lies about the entry count": (
        "content",
        lambda w, b: (_resign(b, w.priv, lambda m: m["counts"].update(entries=1)), b)[1],
    ),
    "bundle is not a folder": (
        "files",
        lambda w, b: (shutil.rmtree(b), b.write_bytes(b"x"), b)[2],
    ),
}


@pytest.mark.parametrize("case", sorted(TAMPER))
def test_tampered_bundle_is_refused_and_previous_list_stays(world: World, case: str) -> None:
    check, tamper = TAMPER[case]
    s = store(world.tmp / "state", world.pub)
    s.install(world.v1)
    before = _snapshot(s)
    bad = tamper(world, _copy(world.v2, world.tmp / "bad"))
    with pytest.raises(BundleError) as err:
        s.install(bad)
    assert err.value.check == check, str(err.value)
    assert "\n" not in str(err.value)
    assert f"({check} check)" in str(err.value)
    assert _snapshot(s) == before
    # and the good bundle still installs afterwards
    assert s.install(world.v2).version == 2


def test_list_for_another_model_is_refused(world: World) -> None:
    s = store(world.tmp / "state", world.pub)
    s.install(world.v1)
    before = _snapshot(s)
    build_full(world.tmp / "other-model", world.persons_v2, world.priv, 2, model=OTHER_MODEL)
    with pytest.raises(BundleError) as err:
        s.install(world.tmp / "other-model")
    assert err.value.check == "model"
    assert OTHER_MODEL.name in str(err.value) and MODEL.name in str(err.value)
    assert _snapshot(s) == before


@pytest.mark.parametrize("version", [1, 0])
def test_same_or_older_version_is_refused(world: World, version: int) -> None:
    s = store(world.tmp / "state", world.pub)
    s.install(world.v1)
    s.install(world.v2)
    before = _snapshot(s)
    target = world.v1 if version == 1 else world.v2
    with pytest.raises(BundleError) as err:
        s.install(target)
    assert err.value.check == "version"
    assert "no rollback" in str(err.value)
    assert _snapshot(s) == before


def test_rollback_blocked_even_after_switching_lists(world: World) -> None:
    s = store(world.tmp / "state", world.pub)
    s.install(world.v2)
    build_full(world.tmp / "b5", people(5, 3), world.priv, 5, list_id="other")
    with pytest.raises(BundleError) as err:
        s.install(world.tmp / "b5")
    assert err.value.check == "list"
    s.install(world.tmp / "b5", replace_list=True)
    with pytest.raises(BundleError) as err:
        s.install(world.v1, replace_list=True)  # test-list v1 < its high-water mark v2
    assert err.value.check == "version"


@pytest.mark.parametrize(
    ("valid_from", "valid_until", "installed_at"),
    [
        # the builder refuses a list already expired, so this one expires on its way
        (NOW - timedelta(days=10), NOW + timedelta(hours=1), NOW + timedelta(hours=2)),
        (NOW + timedelta(hours=2), None, NOW),
    ],
    ids=["expired", "not-yet-valid"],
)
def test_list_outside_validity_window_is_refused(
    world: World, valid_from: Any, valid_until: Any, installed_at: Any
) -> None:
    s = store(world.tmp / "state", world.pub, FixedClock(installed_at))
    s.install(world.v1)
    before = _snapshot(s)
    kw: dict[str, Any] = {"valid_from": valid_from}
    if valid_until is not None:
        kw["valid_until"] = valid_until
    build_full(world.tmp / "window", world.persons_v2, world.priv, 2, **kw)
    with pytest.raises(BundleError) as err:
        s.install(world.tmp / "window")
    assert err.value.check == "validity"
    assert _snapshot(s) == before


def test_small_clock_skew_is_tolerated(world: World) -> None:
    s = store(world.tmp / "state", world.pub, clock_skew_s=300)
    build_full(
        world.tmp / "soon", world.persons_v1, world.priv, 1, valid_from=NOW + timedelta(minutes=2)
    )
    assert s.install(world.tmp / "soon").version == 1


def test_delta_against_another_base_is_refused(world: World) -> None:
    s = store(world.tmp / "state", world.pub)
    # a different v1 (same id and version, other content): the delta's base hash differs
    build_full(world.tmp / "v1-other", people(9, 5), world.priv, 1)
    s.install(world.tmp / "v1-other")
    before = _snapshot(s)
    with pytest.raises(BundleError) as err:
        s.install(world.v2_delta)
    assert err.value.check == "base"
    assert _snapshot(s) == before


def test_delta_without_installed_list_is_refused(world: World) -> None:
    s = store(world.tmp / "state", world.pub)
    with pytest.raises(BundleError) as err:
        s.install(world.v2_delta)
    assert err.value.check == "base"
    assert s.current_path() is None


def test_tampered_delta_is_refused(world: World) -> None:
    s = store(world.tmp / "state", world.pub)
    s.install(world.v1)
    before = _snapshot(s)
    bad = _copy(world.v2_delta, world.tmp / "bad-delta")
    _flip(bad / "delta-index.usearch")
    with pytest.raises(BundleError) as err:
        s.install(bad)
    assert err.value.check == "hash"
    assert _snapshot(s) == before


def test_delta_that_does_not_reproduce_the_signed_list_is_refused(world: World) -> None:
    s = store(world.tmp / "state", world.pub)
    s.install(world.v1)
    before = _snapshot(s)
    bad = _copy(world.v2_delta, world.tmp / "bad-delta")
    _resign(bad, world.priv, lambda m: m["delta"].update(remove_entries=[0, 1]))
    with pytest.raises(BundleError) as err:
        s.install(bad)
    assert err.value.check == "content"
    assert _snapshot(s) == before


def test_install_full_then_delta_and_audit_trail(world: World) -> None:
    records: list[tuple[str, dict[str, Any]]] = []

    class Sink:
        def append(self, kind: str, data: Any) -> None:
            records.append((kind, dict(data)))

    s = store(world.tmp / "state", world.pub, audit=Sink())
    first = s.install(world.v1)
    assert (first.version, first.kind, first.previous_version) == (1, "full", None)
    with pytest.raises(BundleError):
        s.install(world.v1)
    second = s.install(world.v2_delta)
    assert (second.version, second.kind, second.previous_version) == (2, "delta", 1)
    assert [r[1]["action"] for r in records] == ["installed", "refused", "installed"]
    assert all(kind == "watchlist_change" for kind, _ in records)
    assert records[1][1]["check"] == "version"
    assert _load(s).version == 2


def test_real_audit_log_records_changes(world: World) -> None:
    from edge.audit import AuditLog, read_records, verify

    path = world.tmp / "audit.jsonl"
    with AuditLog(path, fsync=False) as audit:
        s = store(world.tmp / "state", world.pub, audit=audit)
        s.install(world.v1)
        with pytest.raises(BundleError):
            s.install(world.tmp / "missing")
    records = read_records(path)
    assert [r["data"]["action"] for r in records] == ["installed", "refused"]
    assert records[1]["data"]["check"] == "files"
    assert verify(path).ok


def test_base_plus_delta_equals_full_bundle(world: World) -> None:
    a = store(world.tmp / "a", world.pub)
    a.install(world.v1)
    a.install(world.v2_delta)
    b = store(world.tmp / "b", world.pub)
    b.install(world.v2)
    # the same index file, byte for byte, and the same entries table
    for name in (INDEX, ENTRIES):
        assert (a.root / CURRENT / name).read_bytes() == (b.root / CURRENT / name).read_bytes()
    wa, wb = _load(a), _load(b)
    rng = np.random.default_rng(3)
    queries = np.concatenate(
        [
            noisy(rng, np.stack([p.vectors[0] for p in world.persons_v2]), 0.75),
            noisy(rng, np.stack([p.vectors[1] for p in world.persons_v1]), 0.7),
        ]
    )
    for q in queries:
        assert wa.search(q, 5) == wb.search(q, 5)
    # graph search and exhaustive search agree too, for both
    ra = [wa._index.search(q, 3, exact=False)[0].keys.tolist() for q in queries]
    rb = [wb._index.search(q, 3, exact=False)[0].keys.tolist() for q in queries]
    assert ra == rb


def test_a_chain_of_deltas_stays_equal_to_full_bundles(world: World) -> None:
    a = store(world.tmp / "a", world.pub)
    a.install(world.v1)
    a.install(world.v2_delta)
    p3 = world.persons_v2[2:] + people(3, 3, prefix="third")
    p3[0].fields = type(p3[0].fields)(reason="court order 17", expires="2025-12-31T00:00:00Z")
    d3, _f3, content = build_next(
        world.v2, p3, world.priv, world.pub, 3, world.tmp / "d3", world.tmp / "f3"
    )
    assert d3.manifest.delta is not None and d3.manifest.delta.base_version == 2
    a.install(world.tmp / "d3")
    b = store(world.tmp / "b", world.pub)
    b.install(world.tmp / "f3")
    assert (a.root / CURRENT / INDEX).read_bytes() == (b.root / CURRENT / INDEX).read_bytes()
    labels = [e.label for e in _load(a).entries()]
    assert labels == [e.label for e in content.entries]
    first = _load(a).entries()[0]
    # the device holds the entry's expiry, never why the person is on the list
    assert first.expires == "2025-12-31T00:00:00Z" and first.reason is None


def test_keeps_a_bounded_number_of_releases(world: World) -> None:
    s = store(world.tmp / "state", world.pub, keep_releases=2)
    s.install(world.v1)
    s.install(world.v2)
    build_full(world.tmp / "v3", world.persons_v2, world.priv, 3)
    s.install(world.tmp / "v3")
    names = sorted(p.name for p in (s.root / RELEASES).iterdir())
    assert names == ["test-list-v2", "test-list-v3"]
    assert os.readlink(s.root / CURRENT) == f"{RELEASES}/test-list-v3"


def test_corrupted_installed_release_is_detected_on_load(world: World) -> None:
    s = store(world.tmp / "state", world.pub)
    s.install(world.v1)
    _flip(s.root / CURRENT / ENTRIES)
    with pytest.raises(BundleError) as err:
        s.load(WatchlistConfig())
    assert err.value.check == "hash"


def test_materialised_delta_release_is_verified_on_load(world: World) -> None:
    s = store(world.tmp / "state", world.pub)
    s.install(world.v1)
    s.install(world.v2_delta)
    _flip(s.root / CURRENT / ENTRIES)
    with pytest.raises(BundleError) as err:
        s.load(WatchlistConfig())
    assert err.value.check == "content"


def test_expired_entries_and_lists_never_match(tmp_path: Path) -> None:
    priv, pub, _, _ = make_keys(tmp_path)
    persons = people(4, 3)
    persons[0].fields = type(persons[0].fields)(expires="2025-06-01T13:00:00Z")  # NOW + 1 h
    build_full(tmp_path / "b", persons, priv, 1, valid_until=NOW + timedelta(days=2))
    clock = FixedClock()
    s = store(tmp_path / "state", pub, clock=clock)
    s.install(tmp_path / "b")
    wl = _load(s)
    probe = noisy(np.random.default_rng(1), persons[0].vectors[:1], 0.9)[0]
    assert wl.identify(probe).match is not None
    assert wl.identify(probe).match.label == persons[0].label  # type: ignore[union-attr]

    clock.now = NOW + timedelta(hours=1)  # the entry's expiry instant
    hits = wl.search(probe, 3)
    assert persons[0].label not in [m.label for m in hits]
    assert wl.identify(probe).match is None
    # still excluded after a fresh load (e.g. a reboot)
    assert persons[0].label not in [m.label for m in _load(s).search(probe, 3)]

    clock.now = NOW + timedelta(days=2)  # the list's own expiry
    other = noisy(np.random.default_rng(1), persons[1].vectors[:1], 0.95)[0]
    assert wl.search(other) == []
    assert wl.active_state() == "expired"
    with pytest.raises(WatchlistError, match="expired"):
        wl.require_active()


def test_builder_refuses_bad_metadata(tmp_path: Path) -> None:
    priv, _, _, _ = make_keys(tmp_path)
    with pytest.raises(WatchlistError, match="list id"):
        build_full(tmp_path / "x", people(1, 2), priv, 1, list_id="bad id/")
    with pytest.raises(WatchlistError, match="expire after"):
        build_full(tmp_path / "y", people(1, 2), priv, 1, valid_until=NOW - timedelta(days=5))
    build_full(tmp_path / "z", people(1, 2), priv, 1)
    with pytest.raises(WatchlistError, match="already exists"):
        build_full(tmp_path / "z", people(1, 2), priv, 1)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_write_full_refuses_wrong_vector_type(tmp_path: Path) -> None:
    from watchlist_helpers import DIM, meta

    from edge.watchlist.writer import assemble

    priv, _, _, _ = make_keys(tmp_path)
    m = meta(1)
    content, next_id = assemble([p.spec("f16") for p in people(1, 2)], "f16", DIM, NOW)
    with pytest.raises(WatchlistError, match="stores i8"):
        write_full(tmp_path / "b", content, m, next_id, priv)


def test_a_damaged_installed_list_can_be_replaced_by_a_full_bundle_only(world: World) -> None:
    s = store(world.tmp / "state", world.pub)
    s.install(world.v1)
    shutil.rmtree(s.root / RELEASES / "test-list-v1")  # must never happen; still recover
    assert s.current_path() is not None
    with pytest.raises(BundleError) as err:
        s.install(world.v2_delta)
    assert err.value.check == "base"
    with pytest.raises(BundleError) as err:
        s.install(world.v1)  # still no rollback: the high-water mark remembers v1
    assert err.value.check == "version"
    assert s.install(world.v2).version == 2
    assert _load(s).version == 2


@pytest.mark.parametrize("view", [True, False], ids=["memory-mapped", "in-memory"])
def test_expired_entry_is_skipped_and_search_widens(tmp_path: Path, view: bool) -> None:
    from edge.watchlist.bundle import load_full, read_bundle

    priv, pub, _, _ = make_keys(tmp_path)
    persons = people(6, 30, templates=3)
    for p in persons[:20]:  # most of the list expires, including the probe's nearest people
        p.fields = type(p.fields)(expires="2025-06-01T12:30:00Z")
    bundle = build_full(tmp_path / "b", persons, priv, 1)
    index, content = load_full(read_bundle(bundle.path, pub), view=view)
    assert index.read_only is view
    clock = FixedClock()
    wl = Watchlist.from_content(
        bundle.manifest, bundle.manifest_sha256, content, index, None, top_k=3, clock=clock
    )
    probe = persons[0].vectors[0]
    assert wl.search(probe, 3)[0].label == persons[0].label
    clock.now = NOW + timedelta(hours=1)
    hits = wl.search(probe, 3)
    assert len(hits) == 3  # still three live entries, found by widening the search
    assert all(int(h.label.split("-")[1]) >= 20 for h in hits)
    assert len(index) == (90 if view else 30)  # a view keeps the templates, filters them
    if view:
        with pytest.raises(WatchlistError, match="read-only"):
            index.remove(np.array([0], dtype=np.uint64))


# --- hardening (issue 12) ---------------------------------------------------------------------


class _Sink:
    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    def append(self, kind: str, data: Any) -> None:
        self.records.append(dict(data))


def test_a_deeply_nested_manifest_is_refused_by_its_signature_and_audited(world: World) -> None:
    sink = _Sink()
    s = store(world.tmp / "state", world.pub, audit=sink)
    s.install(world.v1)
    before = _snapshot(s)
    bad = _copy(world.v2, world.tmp / "deep")
    (bad / MANIFEST).write_bytes(b"[" * 100_000 + b"]" * 100_000)
    with pytest.raises(BundleError) as err:
        s.install(bad)
    assert err.value.check == "signature" and "\n" not in str(err.value)
    assert sink.records[-1]["action"] == "refused" and sink.records[-1]["check"] == "signature"
    assert _snapshot(s) == before


def test_a_signed_version_beyond_2_to_the_53_is_refused_and_the_mark_stays(world: World) -> None:
    s = store(world.tmp / "state", world.pub)
    s.install(world.v1)
    bad = _copy(world.v2, world.tmp / "huge")
    _resign(bad, world.priv, lambda m: m.update(version=2**70))
    with pytest.raises(BundleError, match="2\\^53") as err:
        s.install(bad)
    assert err.value.check == "manifest"
    assert json.loads((s.root / "highwater.json").read_text()) == {"test-list": 1}
    assert s.install(world.v2).version == 2  # an ordinary next version still installs


@pytest.mark.parametrize(
    ("marks", "message"),
    [
        ('{"test-list": "seven"}', '"seven", not a version'),
        ('{"test-list": 1.5}', "1.5, not a version"),
        ('{"test-list": true}', "true, not a version"),
        ('{"test-list": [1]}', "[1], not a version"),
        (json.dumps({"test-list": 2**70}), f"{2**70}, not a version from 1 to 2^53"),
        ("[" * 100_000 + "]" * 100_000, "unreadable"),
        ('{"test-list": 1', "unreadable"),
    ],
    ids=["text", "float", "bool", "list", "2^70", "nested", "torn"],
)
def test_a_bad_high_water_file_is_a_one_line_error_and_audited(
    world: World, marks: str, message: str
) -> None:
    sink = _Sink()
    s = store(world.tmp / "state", world.pub, audit=sink)
    s.install(world.v1)
    (s.root / "highwater.json").write_text(marks)
    with pytest.raises(WatchlistError) as err:
        s.install(world.v2)
    assert message in str(err.value) and "highwater.json" in str(err.value)
    assert "\n" not in str(err.value)
    assert sink.records[-1]["action"] == "failed"
    assert _load(s).version == 1


def test_an_installed_manifest_that_is_not_a_regular_file_is_refused_unread(
    world: World,
) -> None:
    s = store(world.tmp / "state", world.pub)
    s.install(world.v1)
    manifest = s.root / CURRENT / MANIFEST
    manifest.unlink()
    manifest.symlink_to("/dev/zero")
    with pytest.raises(BundleError, match="character device") as err:
        _load(s)
    assert err.value.check == "files"
