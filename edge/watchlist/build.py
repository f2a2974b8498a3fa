"""Building a list (``edge watchlist build``): a photo folder -> a signed bundle (or a delta
against a base), its dispatch details file, and the enrollment report.

The pipeline pieces come in through :class:`Enroller` (the watchlist does not import the
pipeline): the wiring in :mod:`edge.cli.watchlist` passes the production analyzer, decoder and
face picker. Everything checkable without the photos (validity, version, key, output paths,
the base) is checked before the analyzer is built and the first photo is read.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge.clock import format_time, parse_time, utc_now
from edge.config.watchlist import WatchlistConfig
from edge.errors import WatchlistError
from edge.models import ModelPin
from edge.types import Image
from edge.watchlist import keys as keyring
from edge.watchlist.bundle import VerifiedBundle, load_full, read_bundle
from edge.watchlist.details import (
    base_faces,
    check_details_out,
    details_path,
    list_details,
    write_details,
)
from edge.watchlist.enroll import (
    Analyzer,
    EnrollReport,
    Picker,
    enroll,
    read_entries_csv,
    scan_photos,
)
from edge.watchlist.entries import ListContent
from edge.watchlist.index import Dtype
from edge.watchlist.manifest import MAX_VERSION, Manifest
from edge.watchlist.policy import ThresholdPolicy
from edge.watchlist.writer import EntrySpec, ListMeta, assemble, write_delta, write_full


class PinnedAnalyzer(Analyzer, Protocol):
    """An enrollment analyzer that names its embedding model (the list records it)."""

    @property
    def model_pin(self) -> ModelPin: ...


@dataclass(frozen=True)
class Enroller:
    """The pipeline's part of a build, passed in by the wiring."""

    # Built only once the cheap checks passed: loading the models takes a while.
    make_analyzer: Callable[[], PinnedAnalyzer]
    dim: int  # the embedding model's output size
    decode: Callable[[bytes, str], Image]  # a photo file's bytes -> an image
    pick: Picker  # which face of a photo showing several
    progress: Callable[[Iterable[Any]], Iterable[Any]] = lambda it: it


@dataclass(frozen=True)
class BuildRequest:
    """What to build: ``edge watchlist build``'s options (dates as given, ISO 8601)."""

    photos: Path
    key: Path
    out: Path
    list_id: str | None = None
    expires: str | None = None
    valid_from: str | None = None
    entries: Path | None = None
    base: Path | None = None
    full_out: Path | None = None
    dispatch_out: Path | None = None
    version: int | None = None
    dtype: Dtype | None = None
    target_fpir: float | None = None
    threshold: float | None = None
    allow_partial: bool = False


@dataclass(frozen=True)
class Built:
    """The list was written: ``manifest`` is the bundle at ``request.out``."""

    report: EnrollReport
    manifest: Manifest
    dispatch_out: Path


@dataclass(frozen=True)
class Refused:
    """Nothing was written. ``some_usable``: some entries have a usable photo, others do not
    (and partial lists were not allowed); otherwise no current entry has one."""

    report: EnrollReport
    message: str
    some_usable: bool


BuildOutcome = Built | Refused


@dataclass(frozen=True)
class _Base:
    bundle: VerifiedBundle
    content: ListContent

    @property
    def manifest(self) -> Manifest:
        return self.bundle.manifest


def default_list_id(photos: Path) -> str:
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", photos.resolve().name).strip("-.")
    return (name or "watchlist")[:64]


def version_stamp() -> int:
    return int(utc_now().strftime("%Y%m%d%H%M%S"))


def build_list(request: BuildRequest, wl: WatchlistConfig, enroller: Enroller) -> BuildOutcome:
    """Enroll ``request.photos`` and write the bundle(s) and the dispatch details; raises an
    :class:`EdgeError` on anything refused outright."""
    now = utc_now()
    valid_from, valid_until = _validity(request, wl, now)
    if request.version is not None and not 1 <= request.version <= MAX_VERSION:
        raise WatchlistError(f"--version {request.version} is not from 1 to 2^53 ({MAX_VERSION})")
    private_key = keyring.load_private_key(request.key)
    people = scan_photos(request.photos)
    fields = read_entries_csv(request.entries, people) if request.entries else {}
    if request.full_out is not None and request.base is None:
        raise WatchlistError("--full-out goes with --base (the full bundle matching a delta)")
    # the entries' texts go to dispatch only: beside the full bundle unless told otherwise
    dispatch_out = request.dispatch_out or details_path(request.full_out or request.out)
    check_details_out(dispatch_out, [b for b in (request.out, request.full_out) if b is not None])
    base: _Base | None = None
    if request.base is not None:
        bundle = read_bundle(request.base, private_key.public_key())
        base = _Base(bundle, load_full(bundle)[1])
    bm = base.manifest if base is not None else None

    analyzer = enroller.make_analyzer()
    pin = analyzer.model_pin
    if bm is not None and bm.model != pin:
        raise WatchlistError(
            f"base list was made with model {bm.model.name} {bm.model.sha256[:12]}..., this "
            f"build runs {pin.name} {pin.sha256[:12]}...: build a new full list instead"
        )
    dtype: Dtype = request.dtype or (bm.dtype if bm is not None else wl.index_dtype)
    if bm is not None and dtype != bm.dtype:
        raise WatchlistError(f"a delta keeps the base's index dtype ({bm.dtype})")

    known: dict[str, frozenset[str]] = {}
    if base is not None:
        known = {e.label: frozenset(t.photo for t in e.templates) for e in base.content.entries}
    specs, report = enroll(
        people,
        analyzer,
        dtype,
        enroller.decode,
        fields,
        known,
        enroller.progress,
        pick=enroller.pick,
    )
    live: list[EntrySpec] = []
    for spec in specs:
        if spec.fields.expires is not None and parse_time(spec.fields.expires) <= now:
            report.dropped[spec.label] = f"expired at {spec.fields.expires}"
        else:
            live.append(spec)
    if not live:
        message = f"no usable photo of any current entry in {request.photos}"
        return Refused(report, message, some_usable=False)
    missing = report.without_photo
    if missing and not request.allow_partial:
        names = ", ".join(missing[:5]) + (
            f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        )
        message = (
            f"{len(missing)} of {len(specs) + len(missing)} entries have no usable photo "
            f"({names}): nothing written; fix their photos or pass --allow-partial to build "
            "the list without them"
        )
        return Refused(report, message, some_usable=True)

    meta = _list_meta(request, wl, bm, now, valid_from, valid_until, pin, enroller.dim, dtype)
    written = _write(request, live, meta, base, private_key, dispatch_out, now)
    return Built(report, written, dispatch_out)


def _validity(
    request: BuildRequest, wl: WatchlistConfig, now: datetime
) -> tuple[datetime, datetime]:
    """(valid from, valid until), refused before any photo is read if already expired."""
    valid_from = parse_time(request.valid_from, "--valid-from") if request.valid_from else now
    valid_until = (
        parse_time(request.expires, "--expires")
        if request.expires
        else valid_from + timedelta(days=wl.default_validity_days)
    )
    if valid_until <= now:  # ListMeta.check says it again
        given = f"--expires {request.expires}" if request.expires else "the default validity"
        raise WatchlistError(
            f"{given} ends at {format_time(valid_until)}, which has passed (now "
            f"{format_time(now)}): the list would be expired on arrival; nothing written"
        )
    return valid_from, valid_until


def _list_meta(
    request: BuildRequest,
    wl: WatchlistConfig,
    bm: Manifest | None,
    now: datetime,
    valid_from: datetime,
    valid_until: datetime,
    pin: ModelPin,
    dim: int,
    dtype: Dtype,
) -> ListMeta:
    """The new list's manifest fields: a delta keeps its base's id, index and policy unless
    told otherwise."""
    list_id = request.list_id or (bm.list_id if bm is not None else default_list_id(request.photos))
    if bm is not None and list_id != bm.list_id:
        raise WatchlistError(f"--list-id {list_id!r} differs from the base's {bm.list_id!r}")
    version = request.version or max(version_stamp(), bm.version + 1 if bm is not None else 1)
    if request.threshold is not None:
        policy = ThresholdPolicy.fixed(request.threshold)
    elif request.target_fpir is not None:
        policy = ThresholdPolicy.fpir(request.target_fpir)
    elif bm is not None:
        policy = bm.policy
    else:
        policy = ThresholdPolicy.fpir(wl.target_fpir)
    meta = ListMeta(
        list_id=list_id,
        version=version,
        created=now,
        valid_from=valid_from,
        valid_until=valid_until,
        model=pin,
        dim=dim,
        dtype=dtype,
        policy=policy,
        connectivity=bm.connectivity if bm is not None else wl.connectivity,
        expansion_add=bm.expansion_add if bm is not None else wl.expansion_add,
    )
    meta.check()
    return meta


def _write(
    request: BuildRequest,
    live: list[EntrySpec],
    meta: ListMeta,
    base: _Base | None,
    private_key: Ed25519PrivateKey,
    dispatch_out: Path,
    now: datetime,
) -> Manifest:
    """Write the bundle (a delta, and the full one with ``full_out``, against a base) and the
    signed dispatch details; returns the manifest of the bundle at ``request.out``."""
    content, next_id = assemble(
        live,
        meta.dtype,
        meta.dim,
        now,
        base=base.content if base is not None else None,
        base_next_entry_id=base.manifest.next_entry_id if base is not None else 0,
    )
    if base is not None:
        written = write_delta(
            request.out, base.bundle, base.content, content, meta, next_id, private_key
        )
        bundles = [written]
        if request.full_out is not None:
            bundles.append(write_full(request.full_out, content, meta, next_id, private_key))
    else:
        written = write_full(request.out, content, meta, next_id, private_key)
        bundles = [written]
    fields_by_label = {spec.label: spec.fields for spec in live}
    public_key = private_key.public_key()
    faces = base_faces(base.bundle, public_key) if base is not None else {}
    for spec in live:
        enrolled = {t.photo: t.box for t in spec.templates if t.box is not None}
        faces.setdefault(spec.label, {}).update(enrolled)
    details = list_details(content, fields_by_label, bundles, private_key, faces)
    write_details(dispatch_out, details, private_key)
    return written.manifest
