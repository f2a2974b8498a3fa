"""The watchlist sync protocol: the retained announcement, bundles as chunks.

Topics (built in :mod:`edge.mqtt.topics`; ``P`` is ``mqtt.topic_prefix``, default ``edge/v1``)::

    P/watchlist/<list-id>/manifest                  retained: the announcement (JSON, below)
    P/watchlist/<list-id>/chunk/<sha256>/<n>        retained: chunk n of the transfer <sha256>
    P/<device-id>/sync                              retained: what the device's sync is doing

A *transfer* is one bundle folder packed into a deterministic tar archive; ``<sha256>`` is the
archive's sha256 and keys everything about it. The announcement lists each chunk's sha256 and
carries the bundle's signed ``manifest.json`` and ``manifest.sig``, so a device checks the
signature, list, version and model before it fetches a single chunk.

Only standard MQTT is used: retained messages, QoS 1, subscriptions to single topics. So a
device that was offline finds everything it needs on whichever node of a broker cluster it
reaches, and fetches the chunks it lacks, a window at a time.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import math
import re
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from edge.errors import SyncError
from edge.system.inputs import load_json
from edge.watchlist.bundle import MAX_MANIFEST_BYTES, read_unverified, sha256_bytes
from edge.watchlist.manifest import (
    DELTA_ENTRIES,
    DELTA_INDEX,
    ENTRIES,
    INDEX,
    MANIFEST,
    MAX_VERSION,
    SIGNATURE,
)

SYNC_FORMAT = "edge-sync/1"
BUNDLE_FILES = frozenset({MANIFEST, SIGNATURE, INDEX, ENTRIES, DELTA_INDEX, DELTA_ENTRIES})
MAX_SIGNATURE_BYTES = 1024
MAX_CHUNKS = 100_000
MAX_ANNOUNCEMENT_BYTES = 16 * 1024 * 1024
_SHA256 = re.compile(r"^[0-9a-f]{64}$")

TransferKind = Literal["full", "delta"]


# --- the announcement ------------------------------------------------------------------------


@dataclass(frozen=True)
class TransferInfo:
    """One packed bundle as announced: its digest, size, chunking and signed manifest."""

    kind: TransferKind
    sha256: str
    size: int
    chunk_bytes: int
    chunks: tuple[str, ...]
    manifest_bytes: bytes
    signature: bytes
    base_version: int | None = None

    def chunk_span(self, n: int) -> tuple[int, int]:
        """(offset, length) of chunk ``n`` in the archive."""
        offset = n * self.chunk_bytes
        return offset, min(self.chunk_bytes, self.size - offset)

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "sha256": self.sha256,
            "bytes": self.size,
            "chunk_bytes": self.chunk_bytes,
            "chunks": list(self.chunks),
            "manifest": base64.b64encode(self.manifest_bytes).decode("ascii"),
            "signature": base64.b64encode(self.signature).decode("ascii"),
            "base_version": self.base_version,
        }


@dataclass(frozen=True)
class Announcement:
    """What the hub retains on ``P/watchlist/<list-id>/manifest``: the newest version of a list,
    as a full bundle and/or a delta against the version before it."""

    list_id: str
    version: int
    published: str
    transfers: tuple[TransferInfo, ...]
    publisher: str = ""

    def transfer(self, kind: TransferKind) -> TransferInfo | None:
        return next((t for t in self.transfers if t.kind == kind), None)

    def to_bytes(self) -> bytes:
        document = {
            "format": SYNC_FORMAT,
            "list_id": self.list_id,
            "version": self.version,
            "published": self.published,
            "publisher": self.publisher,
            "transfers": [t.to_json() for t in self.transfers],
        }
        return json.dumps(document, sort_keys=True, separators=(",", ":")).encode("utf-8")


def _require(cond: bool, message: str) -> None:
    if not cond:
        raise ValueError(message)


def _b64(value: Any, name: str, limit: int) -> bytes:
    _require(isinstance(value, str), f"{name} must be base64 text")
    try:
        data = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"{name} is not valid base64") from exc
    _require(0 < len(data) <= limit, f"{name} must be 1 to {limit} bytes")
    return data


def _count(value: Any, name: str, minimum: int) -> int:
    _require(
        isinstance(value, int) and not isinstance(value, bool) and value >= minimum,
        f"{name} must be an integer >= {minimum}",
    )
    return int(value)


def _version(value: Any, name: str) -> int:
    version = _count(value, name, 1)
    _require(version <= MAX_VERSION, f"{name} must be at most 2^53 ({MAX_VERSION})")
    return version


def _parse_transfer(data: Any, max_bytes: int) -> TransferInfo:
    _require(isinstance(data, dict), "a transfer must be an object")
    kind = data.get("kind")
    _require(kind in ("full", "delta"), "transfer kind must be 'full' or 'delta'")
    digest = data.get("sha256")
    _require(isinstance(digest, str) and bool(_SHA256.fullmatch(digest)), "sha256 must be hex")
    size = _count(data.get("bytes"), "bytes", 1)
    _require(size <= max_bytes, f"the {kind} transfer is {size} bytes, above {max_bytes}")
    chunk_bytes = _count(data.get("chunk_bytes"), "chunk_bytes", 1)
    chunks = data.get("chunks")
    _require(isinstance(chunks, list), "chunks must be a list")
    expected = math.ceil(size / chunk_bytes)
    _require(expected <= MAX_CHUNKS, f"at most {MAX_CHUNKS} chunks")
    _require(len(chunks) == expected, f"{size} bytes in {chunk_bytes}-byte chunks are {expected}")
    for c in chunks:
        _require(isinstance(c, str) and bool(_SHA256.fullmatch(c)), "each chunk needs a sha256")
    base = data.get("base_version")
    if kind == "delta":
        base = _version(base, "base_version")
    else:
        _require(base is None, "a full transfer has no base_version")
    return TransferInfo(
        kind=kind,
        sha256=digest,
        size=size,
        chunk_bytes=chunk_bytes,
        chunks=tuple(chunks),
        manifest_bytes=_b64(data.get("manifest"), "manifest", MAX_MANIFEST_BYTES),
        signature=_b64(data.get("signature"), "signature", MAX_SIGNATURE_BYTES),
        base_version=base,
    )


def parse_announcement(raw: bytes, list_id: str, max_bytes: int) -> Announcement:
    """Parse and check an announcement received on ``list_id``'s manifest topic.

    This checks the form only; the signature of each embedded manifest is the device's next
    check (:func:`edge.fleet.sync.verify_transfer`). Raises :class:`SyncError`."""
    try:
        _require(len(raw) <= MAX_ANNOUNCEMENT_BYTES, "announcement too large")
        try:
            data = load_json(raw)
        except ValueError as exc:  # bad UTF-8 and bad JSON included
            raise SyncError(f"announcement for {list_id} is not valid JSON: {exc}") from exc
        _require(isinstance(data, dict), "the announcement must be a JSON object")
        _require(data.get("format") == SYNC_FORMAT, f"format must be {SYNC_FORMAT!r}")
        _require(data.get("list_id") == list_id, f"list_id must be {list_id!r} (its topic)")
        version = _version(data.get("version"), "version")
        published = data.get("published")
        _require(isinstance(published, str), "published must be a time")
        publisher = data.get("publisher", "")
        _require(isinstance(publisher, str), "publisher must be text")
        items = data.get("transfers")
        _require(isinstance(items, list) and 1 <= len(items) <= 2, "one or two transfers")
        transfers = tuple(_parse_transfer(t, max_bytes) for t in items)
        _require(
            len({t.kind for t in transfers}) == len(transfers), "at most one full and one delta"
        )
    except ValueError as exc:
        raise SyncError(f"announcement for {list_id} refused: {exc}") from exc
    return Announcement(list_id, version, published, transfers, publisher)


# --- packing -----------------------------------------------------------------------------------


def _bundle_names(path: Path) -> list[str]:
    manifest = read_unverified(path)
    return [MANIFEST, SIGNATURE, *sorted(manifest.files)]


def pack_bundle(path: Path) -> bytes:
    """The bundle folder as a tar archive whose bytes depend on the files' contents only."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name in _bundle_names(path):
            try:
                data = (path / name).read_bytes()
            except OSError as exc:
                raise SyncError(f"cannot read {path / name}: {exc.strerror or exc}") from exc
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def make_transfer(path: Path, chunk_bytes: int) -> tuple[TransferInfo, bytes]:
    """Pack a bundle and describe it for an announcement; returns the info and the archive."""
    manifest = read_unverified(path)
    data = pack_bundle(path)
    chunks = tuple(
        sha256_bytes(data[i : i + chunk_bytes]) for i in range(0, len(data), chunk_bytes)
    )
    info = TransferInfo(
        kind=manifest.kind,
        sha256=sha256_bytes(data),
        size=len(data),
        chunk_bytes=chunk_bytes,
        chunks=chunks,
        manifest_bytes=(path / MANIFEST).read_bytes(),
        signature=(path / SIGNATURE).read_bytes(),
        base_version=manifest.delta.base_version if manifest.delta is not None else None,
    )
    return info, data


def unpack_bundle(archive: Path, dest: Path, transfer: TransferInfo) -> None:
    """Unpack a verified archive into ``dest`` (created), refusing anything but the bundle's
    own flat files; its manifest must be the one that was announced (and signature-checked)."""
    dest.mkdir(parents=True, exist_ok=False)
    seen: set[str] = set()
    total = 0
    try:
        with tarfile.open(archive, mode="r:") as tar:
            for member in tar:
                name = member.name
                if name not in BUNDLE_FILES or name in seen or not member.isreg():
                    raise SyncError(f"transfer {transfer.sha256[:12]} holds unexpected {name!r}")
                total += member.size
                if total > transfer.size:
                    raise SyncError(f"transfer {transfer.sha256[:12]} unpacks larger than itself")
                seen.add(name)
                source = tar.extractfile(member)
                assert source is not None
                with source, (dest / name).open("wb") as fh:
                    while block := source.read(1 << 20):
                        fh.write(block)
    except (tarfile.TarError, EOFError) as exc:
        raise SyncError(f"transfer {transfer.sha256[:12]} is not a bundle archive: {exc}") from exc
    except OSError as exc:
        raise SyncError(f"cannot unpack transfer into {dest}: {exc.strerror or exc}") from exc
    try:
        manifest = (dest / MANIFEST).read_bytes()
    except FileNotFoundError as exc:
        raise SyncError(f"transfer {transfer.sha256[:12]} has no {MANIFEST}") from exc
    if manifest != transfer.manifest_bytes:
        raise SyncError(f"transfer {transfer.sha256[:12]}: its {MANIFEST} is not the announced one")
