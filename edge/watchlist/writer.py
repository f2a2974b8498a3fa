"""Building bundles (the hub side): full bundles and deltas, written atomically and signed.

Enrolled people become a list (:func:`assemble`), which is written to a staging folder,
fsync'd, signed and renamed into place (:func:`write_full`, :func:`write_delta`): a bundle
either exists whole or not at all. The format itself is :mod:`edge.watchlist.bundle`; what
dispatch alone needs of each entry is written beside the bundle by :mod:`edge.watchlist.details`.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge.clock import format_time
from edge.config.base import TOPIC_ID_PATTERN
from edge.errors import WatchlistError
from edge.models import ModelPin, file_sha256
from edge.watchlist import keys as keyring
from edge.watchlist.bundle import VerifiedBundle, fsync_path, sha256_bytes, write_synced
from edge.watchlist.entries import Entry, ListContent, Template, canonical_json
from edge.watchlist.index import (
    MAX_TEMPLATES_PER_ENTRY,
    Dtype,
    IndexParams,
    StoredArray,
    make_key,
    numpy_dtype,
)
from edge.watchlist.manifest import (
    DELTA_ENTRIES,
    DELTA_INDEX,
    ENTRIES,
    INDEX,
    MANIFEST,
    MAX_VERSION,
    SIGNATURE,
    DeltaInfo,
    FileRef,
    Manifest,
)
from edge.watchlist.policy import ThresholdPolicy


@dataclass(frozen=True)
class ListMeta:
    """What a build says about the list, apart from its contents."""

    list_id: str
    version: int
    created: datetime
    valid_from: datetime
    valid_until: datetime
    model: ModelPin
    dim: int
    dtype: Dtype
    policy: ThresholdPolicy
    connectivity: int = 20
    expansion_add: int = 128

    def check(self) -> None:
        if not re.fullmatch(TOPIC_ID_PATTERN, self.list_id):
            raise WatchlistError(
                f"list id {self.list_id!r}: use 1-64 letters, digits, '.', '_' or '-'"
            )
        if not 1 <= self.version <= MAX_VERSION:
            raise WatchlistError(f"version {self.version} is not from 1 to 2^53 ({MAX_VERSION})")
        if self.valid_until <= self.valid_from:
            raise WatchlistError("the list must expire after it becomes valid")
        if self.valid_until <= self.created:
            raise WatchlistError(
                f"the list would expire at {format_time(self.valid_until)}, before it is built "
                f"({format_time(self.created)}): no device would install it"
            )

    def params(self) -> IndexParams:
        return IndexParams(self.dim, self.dtype, self.connectivity, self.expansion_add)


def _write_signed(
    out: Path,
    private_key: Ed25519PrivateKey,
    write_files: Callable[[Path, str], Manifest],
) -> VerifiedBundle:
    """Stage the bundle's files (``write_files(folder, signer key id)`` returns the manifest
    describing them), sign the manifest and move the folder to ``out`` in one rename."""
    work = _workdir(out)
    try:
        manifest = write_files(work, keyring.key_id(private_key.public_key()))
        return _finish(out, work, manifest, private_key)
    except BaseException as exc:
        shutil.rmtree(work, ignore_errors=True)
        if isinstance(exc, OSError):
            raise WatchlistError(f"cannot write {out}: {exc.strerror or exc}") from exc
        raise


def _finish(
    out: Path,
    work: Path,
    manifest: Manifest,
    private_key: Ed25519PrivateKey,
) -> VerifiedBundle:
    raw = canonical_json(manifest.to_json())
    signature = keyring.sign(private_key, raw)
    write_synced(work / MANIFEST, raw)
    write_synced(work / SIGNATURE, signature)
    fsync_path(work)
    try:
        os.rename(work, out)
    except OSError as exc:
        raise WatchlistError(f"cannot create {out}: {exc.strerror or exc}") from exc
    fsync_path(out.parent)
    return VerifiedBundle(out, manifest, raw, signature)


def _workdir(out: Path) -> Path:
    if out.exists():
        raise WatchlistError(f"{out} already exists: choose a new output path")
    parent = out.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=parent))
    except OSError as exc:
        raise WatchlistError(f"cannot write in {parent}: {exc.strerror or exc}") from exc


def _write_part(
    work: Path, index_name: str, entries_name: str, content: ListContent, params: IndexParams
) -> dict[str, FileRef]:
    content.build_index(params).save(work / index_name)
    with (work / index_name).open("rb") as fh:
        os.fsync(fh.fileno())
    write_synced(work / entries_name, content.entries_bytes())
    return {
        name: FileRef(file_sha256(work / name), (work / name).stat().st_size)
        for name in (index_name, entries_name)
    }


def _manifest(
    meta: ListMeta,
    content: ListContent,
    next_entry_id: int,
    files: dict[str, FileRef],
    signer: str,
    kind: Literal["full", "delta"],
    delta: DeltaInfo | None,
) -> Manifest:
    return Manifest(
        kind=kind,
        list_id=meta.list_id,
        version=meta.version,
        created=format_time(meta.created),
        valid_from=format_time(meta.valid_from),
        valid_until=format_time(meta.valid_until),
        signing_key_id=signer,
        model=meta.model,
        dim=meta.dim,
        dtype=meta.dtype,
        connectivity=meta.connectivity,
        expansion_add=meta.expansion_add,
        policy=meta.policy,
        entry_count=len(content.entries),
        template_count=content.template_count,
        entries_sha256=sha256_bytes(content.entries_bytes()),
        templates_sha256=content.templates_digest(),
        next_entry_id=next_entry_id,
        files=files,
        delta=delta,
    )


def write_full(
    out: Path,
    content: ListContent,
    meta: ListMeta,
    next_entry_id: int,
    private_key: Ed25519PrivateKey,
) -> VerifiedBundle:
    """Write and sign a full bundle at ``out`` (which must not exist)."""
    meta.check()
    _check_vectors(content, meta)

    def manifest(work: Path, signer: str) -> Manifest:
        files = _write_part(work, INDEX, ENTRIES, content, meta.params())
        return _manifest(meta, content, next_entry_id, files, signer, "full", None)

    return _write_signed(out, private_key, manifest)


def diff(base: ListContent, new: ListContent) -> tuple[list[int], ListContent]:
    """Entries to remove from ``base`` and the entries (with templates) to add."""
    base_by_id = {e.id: e for e in base.entries}
    new_by_id = {e.id: e for e in new.entries}
    removes = []
    for entry_id, entry in base_by_id.items():
        other = new_by_id.get(entry_id)
        if (
            other is None
            or other != entry
            or not np.array_equal(base.vectors_of(entry), new.vectors_of(other))
        ):
            removes.append(entry_id)
    removed = set(removes)
    adds = [e for e in new.entries if e.id not in base_by_id or e.id in removed]
    add_keys = np.asarray(sorted(t.key for e in adds for t in e.templates), dtype=np.uint64)
    rows = np.searchsorted(new.keys, add_keys)
    return sorted(removes), ListContent.create(adds, add_keys, new.vectors[rows])


def write_delta(
    out: Path,
    base: VerifiedBundle,
    base_content: ListContent,
    content: ListContent,
    meta: ListMeta,
    next_entry_id: int,
    private_key: Ed25519PrivateKey,
) -> VerifiedBundle:
    """Write and sign a delta that turns ``base`` into ``content``."""
    meta.check()
    _check_vectors(content, meta)
    bm = base.manifest
    if meta.version <= bm.version:
        raise WatchlistError(f"version {meta.version} must be above the base's {bm.version}")
    if meta.list_id != bm.list_id:
        raise WatchlistError(f"list id {meta.list_id!r} differs from the base's {bm.list_id!r}")
    if (meta.model, meta.dim, meta.dtype) != (bm.model, bm.dim, bm.dtype):
        raise WatchlistError("a delta must keep the base's embedding model and index dtype")
    removes, adds = diff(base_content, content)
    info = DeltaInfo(
        base_version=bm.version,
        base_entries_sha256=bm.entries_sha256,
        base_templates_sha256=bm.templates_sha256,
        remove_entries=tuple(removes),
        add_entries=len(adds.entries),
        add_templates=adds.template_count,
    )

    def manifest(work: Path, signer: str) -> Manifest:
        files = _write_part(work, DELTA_INDEX, DELTA_ENTRIES, adds, meta.params())
        return _manifest(meta, content, next_entry_id, files, signer, "delta", info)

    return _write_signed(out, private_key, manifest)


def _check_vectors(content: ListContent, meta: ListMeta) -> None:
    v = content.vectors
    if v.dtype != numpy_dtype(meta.dtype) or v.ndim != 2 or v.shape[1] != meta.dim:
        raise WatchlistError(
            f"templates are {v.dtype} {v.shape}, the list stores {meta.dtype} x {meta.dim}"
        )


# --- assembling a list from enrollment results (the hub) ------------------------------------


@dataclass(frozen=True)
class EntryFields:
    """Per-entry fields from the entries CSV; ``expires`` is a canonical UTC time string.

    ``expires`` goes into the device bundle; the texts only into the dispatch details file.
    """

    reason: str | None = None
    legal_basis: str | None = None
    case_ref: str | None = None
    expires: str | None = None


# A face's box in a photo's pixels, x1 < x2 and y1 < y2: which face of it was enrolled.
FaceBox = tuple[int, int, int, int]


@dataclass(frozen=True, eq=False)
class TemplateSpec:
    """One accepted photo. ``vector`` None means: reuse the base list's template of ``photo``.
    ``box``: the face the template was made of (None for a reused one: it was not looked at);
    it goes only into the dispatch details file."""

    photo: str
    quality: float
    vector: StoredArray | None
    box: FaceBox | None = None


@dataclass(frozen=True)
class EntrySpec:
    label: str
    fields: EntryFields
    templates: tuple[TemplateSpec, ...]


def assemble(
    specs: Sequence[EntrySpec],
    dtype: Dtype,
    dim: int,
    now: datetime,
    base: ListContent | None = None,
    base_next_entry_id: int = 0,
) -> tuple[ListContent, int]:
    """Turn enrolled people into a list, keeping the base's entry ids, dates and templates.

    A person already on the base list keeps its id and ``added`` date; a photo the base already
    holds keeps its stored template, so an unchanged person is unchanged in a delta. New people
    get new ids, in label order. Returns the list and the next free entry id.

    Only ``expires`` of an entry's fields goes into the list (devices stop matching an expired
    entry); reason, legal basis and case reference are for dispatch only and go into the
    signed details file beside the bundle (:mod:`edge.watchlist.details`), never to a device.
    """
    base_by_label = base.by_label() if base is not None else {}
    next_id = base_next_entry_id
    entries: list[Entry] = []
    keys: list[int] = []
    rows: list[StoredArray] = []
    empty: StoredArray = np.zeros((0, dim), dtype=numpy_dtype(dtype))
    labels = [s.label for s in specs]
    if len(set(labels)) != len(labels):
        raise WatchlistError("two entries share one label")
    for spec in sorted(specs, key=lambda s: s.label):
        if not spec.templates:
            raise WatchlistError(f"entry {spec.label!r} has no template")
        if len(spec.templates) > MAX_TEMPLATES_PER_ENTRY:
            raise WatchlistError(
                f"entry {spec.label!r} has {len(spec.templates)} photos; at most "
                f"{MAX_TEMPLATES_PER_ENTRY}"
            )
        old = base_by_label.get(spec.label)
        reusable: dict[str, tuple[StoredArray, float]] = {}
        if old is not None and base is not None:
            entry_id, added = old.id, old.added
            for t, vec in zip(old.templates, base.vectors_of(old), strict=True):
                reusable[t.photo] = (vec, t.quality)
        else:
            entry_id, added = next_id, format_time(now)
            next_id += 1
        templates = []
        for number, spec_t in enumerate(spec.templates):
            if spec_t.photo in reusable:
                vec, quality = reusable[spec_t.photo]
            elif spec_t.vector is not None:
                vec, quality = spec_t.vector, round(float(spec_t.quality), 4)
            else:
                raise WatchlistError(f"entry {spec.label!r}: no template for photo {spec_t.photo}")
            if vec.dtype != numpy_dtype(dtype) or vec.shape != (dim,):
                raise WatchlistError(f"entry {spec.label!r}: template is {vec.dtype} {vec.shape}")
            key = make_key(entry_id, number)
            templates.append(Template(key, spec_t.photo, quality))
            keys.append(key)
            rows.append(vec)
        entries.append(
            Entry(
                id=entry_id,
                label=spec.label,
                added=added,
                templates=tuple(templates),
                expires=spec.fields.expires,
            )
        )
    vectors: StoredArray = np.stack(rows) if rows else empty
    content = ListContent.create(entries, np.asarray(keys, dtype=np.uint64), vectors)
    return content, next_id
