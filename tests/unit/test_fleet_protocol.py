"""The sync protocol's pieces: packing, the announcement, the device's decision, partial
transfers; and an interrupted transfer that resumes across a restart of the device and of a
real broker."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path
from typing import Any

import pytest
from fleet_helpers import LIST_ID, MODEL, two_versions

from edge.errors import SyncError
from edge.fleet.hub import prepare
from edge.fleet.protocol import (
    Announcement,
    make_transfer,
    pack_bundle,
    parse_announcement,
    unpack_bundle,
)
from edge.fleet.transfer import Installed, PartialTransfer, plan
from edge.models import ModelPin
from edge.mqtt.topics import ListTopics, parse_chunk_topic
from edge.watchlist.bundle import read_bundle


@pytest.fixture
def lists(tmp_path: Path) -> dict[str, Any]:
    return two_versions(tmp_path)


def test_pack_is_deterministic_and_unpacks_to_a_verifiable_bundle(
    lists: dict[str, Any], tmp_path: Path
) -> None:
    assert pack_bundle(lists["v1"]) == pack_bundle(lists["v1"])
    info, data = make_transfer(lists["v1"], 1024)
    assert info.size == len(data) and len(info.chunks) == -(-len(data) // 1024)
    archive = tmp_path / "a.tar"
    archive.write_bytes(data)
    unpack_bundle(archive, tmp_path / "out", info)
    verified = read_bundle(tmp_path / "out", lists["public"])
    assert verified.manifest.version == 1 and verified.manifest.list_id == LIST_ID


def _tar(members: list[tuple[str, bytes, bytes]]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, kind, data in members:
            member = tarfile.TarInfo(name)
            member.type = kind
            member.size = len(data) if kind == tarfile.REGTYPE else 0
            if kind == tarfile.SYMTYPE:
                member.linkname = "/etc/passwd"
            tar.addfile(member, io.BytesIO(data) if kind == tarfile.REGTYPE else None)
    return out.getvalue()


@pytest.mark.parametrize(
    ("members", "message"),
    [
        ([("../manifest.json", tarfile.REGTYPE, b"x")], "unexpected '../manifest.json'"),
        ([("manifest.json", tarfile.SYMTYPE, b"")], "unexpected 'manifest.json'"),
        ([("evil.sh", tarfile.REGTYPE, b"x")], "unexpected 'evil.sh'"),
        ([("manifest.json", tarfile.REGTYPE, b"{}")], "not the announced one"),
    ],
)
def test_unpack_refuses_anything_but_the_announced_bundle(
    lists: dict[str, Any], tmp_path: Path, members: list[tuple[str, bytes, bytes]], message: str
) -> None:
    info, _ = make_transfer(lists["v1"], 1024)
    archive = tmp_path / "bad.tar"
    archive.write_bytes(_tar(members))
    with pytest.raises(SyncError, match=message):
        unpack_bundle(archive, tmp_path / "out", info)
    assert not (tmp_path / "passwd").exists()


def test_announcement_round_trips_and_bad_ones_are_one_line_errors(lists: dict[str, Any]) -> None:
    announcement, _ = prepare([lists["v2"], lists["v2_delta"]], 2048)
    raw = announcement.to_bytes()
    assert parse_announcement(raw, LIST_ID, 1 << 30) == announcement
    document = json.loads(raw)
    cases: list[tuple[bytes, str, int, str]] = [
        (raw, "other", 1 << 30, "list_id must be 'other'"),
        (raw, LIST_ID, 100, "above 100"),
        (b"{nope", LIST_ID, 1 << 30, "not valid JSON"),
    ]
    broken = json.loads(raw)
    broken["transfers"][0]["chunks"].pop()
    cases.append((json.dumps(broken).encode(), LIST_ID, 1 << 30, "chunks are"))
    broken = dict(document, format="edge-sync/9")
    cases.append((json.dumps(broken).encode(), LIST_ID, 1 << 30, "format must be"))
    # issue 12: nesting that overflowed the parser, versions beyond 2^53, NaN
    cases.append((b"[" * 100_000 + b"]" * 100_000, LIST_ID, 1 << 30, "not valid JSON: .*nested"))
    broken = dict(document, version=2**70)
    cases.append((json.dumps(broken).encode(), LIST_ID, 1 << 30, "at most 2\\^53"))
    cases.append((raw.replace(b'"version":2', b'"version":NaN'), LIST_ID, 1 << 30, "NaN"))
    for payload, lid, limit, message in cases:
        with pytest.raises(SyncError, match=message) as caught:
            parse_announcement(payload, lid, limit)
        assert "\n" not in str(caught.value)
    assert parse_chunk_topic(ListTopics("edge/v1", "gate").chunk("ab" * 32, 7), "edge/v1") == (
        "gate",
        "ab" * 32,
        7,
    )
    assert parse_chunk_topic("edge/v1/cam-1/status", "edge/v1") is None


def test_plan_prefers_the_delta_on_its_base_and_follows_list_preference(
    lists: dict[str, Any],
) -> None:
    pub = lists["public"]
    v2, _ = prepare([lists["v2"], lists["v2_delta"]], 2048)
    base = read_bundle(lists["v1"], pub).manifest
    on_v1 = Installed.of(base)
    p = plan(v2, on_v1, [LIST_ID], pub, MODEL)
    assert (p.action, p.transfer and p.transfer.kind, p.replace_list) == ("fetch", "delta", False)
    # Nothing installed: the full bundle.
    p = plan(v2, None, [LIST_ID], pub, MODEL)
    assert p.action == "fetch" and p.transfer is not None and p.transfer.kind == "full"
    # The delta refused before: fall back to the full bundle.
    delta = v2.transfer("delta")
    assert delta is not None
    p = plan(v2, on_v1, [LIST_ID], pub, MODEL, refused=frozenset({delta.sha256}))
    assert p.transfer is not None and p.transfer.kind == "full"
    # Up to date.
    assert plan(v2, Installed(LIST_ID, 2, "0" * 64, "0" * 64), [LIST_ID], pub, MODEL).state == (
        "current"
    )
    # Only a delta, and the device is not on its base.
    only_delta = Announcement(v2.list_id, v2.version, v2.published, (delta,))
    p = plan(only_delta, None, [LIST_ID], pub, MODEL)
    assert p.state == "waiting" and "publish the full bundle" in p.detail
    # Another model, and not followed at all.
    p = plan(v2, None, [LIST_ID], pub, ModelPin("arcface", "cd" * 32))
    assert p.state == "refused" and "model check" in p.detail
    assert plan(v2, None, ["other"], pub, MODEL).state == "not followed"
    # Preference: holding the more preferred list 'a', ignore 'gate'; holding 'z', switch.
    holding_a = Installed("a", 9, "0" * 64, "0" * 64)
    assert plan(v2, holding_a, ["a", LIST_ID], pub, MODEL).state == "standby"
    p = plan(v2, Installed("z", 9, "0" * 64, "0" * 64), [LIST_ID, "z"], pub, MODEL)
    assert p.action == "fetch" and p.replace_list


def test_partial_transfer_keeps_verified_chunks_across_reopen(
    lists: dict[str, Any], tmp_path: Path
) -> None:
    info, data = make_transfer(lists["v1"], 1024)
    partial = PartialTransfer(tmp_path / "sync", info)
    assert partial.open() == 0
    assert not partial.put(0, b"x" * 1024)  # not the announced bytes: nothing written
    for n in (0, 2, 3):
        offset, length = info.chunk_span(n)
        assert partial.put(n, data[offset : offset + length])
    partial.close()
    again = PartialTransfer(tmp_path / "sync", info)
    assert again.open() >= 3 and {0, 2, 3} <= again.have
    for n in again.missing():
        offset, length = info.chunk_span(n)
        assert again.put(n, data[offset : offset + length])
    assert again.complete and again.finish().read_bytes() == data
    again.discard()
