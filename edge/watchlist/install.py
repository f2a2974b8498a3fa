"""The device's installed watchlist: verification, atomic swap, no rollback.

Layout of the state directory (``<state_dir>/watchlist`` by default)::

    current -> releases/<list_id>-v<version>      symlink to the active release
    releases/<list_id>-v<version>/                manifest.json, manifest.sig, index.usearch,
                                                  entries.json (a delta is stored applied)
    highwater.json                                the highest version installed, per list id
    .lock                                         serialises installers

An install checks, in order: files present, signature (trusted key), manifest, every file's
sha256, the embedding-model pin, the validity window, the list id, the version (strictly above
the installed one and above the high-water mark), for a delta its base (exactly the installed
manifest), and the list contents against the signed digests. The new release is written to a
staging folder, fsync'd, loaded back as the runtime would load it, renamed into ``releases/``
and only then made active by replacing the ``current`` symlink (``rename`` is atomic). Any
failure before that last step leaves the active list exactly as it was and names the check.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from edge.audit import WATCHLIST_CHANGE
from edge.clock import format_time, utc_now
from edge.config import Config
from edge.config.watchlist import WatchlistConfig
from edge.errors import BundleError, WatchlistError
from edge.models import ModelPin, embedding_pin
from edge.system.inputs import load_json, read_bounded
from edge.watchlist import keys as keyring
from edge.watchlist.bundle import (
    VerifiedBundle,
    apply_delta,
    check_content,
    check_files,
    fsync_path,
    load_full,
    load_templates,
    read_bundle,
    read_bundle_file,
    read_signed_manifest,
    sha256_bytes,
    write_synced,
)
from edge.watchlist.entries import ListContent, parse_entries
from edge.watchlist.index import TemplateIndex
from edge.watchlist.manifest import (
    ENTRIES,
    INDEX,
    MANIFEST,
    MAX_VERSION,
    SIGNATURE,
    Manifest,
    parse_manifest,
)
from edge.watchlist.matcher import Watchlist, calibration_of
from edge.watchlist.policy import is_expired

log = logging.getLogger(__name__)

CURRENT = "current"
RELEASES = "releases"
HIGHWATER = "highwater.json"
LOCK = ".lock"
STAGING_PREFIX = ".staging-"
# One small mark per list id ever installed: a few dozen bytes each.
MAX_HIGHWATER_BYTES = 1 << 20


class AuditSink(Protocol):
    """What install needs of the audit log (:class:`edge.audit.AuditLog` fits)."""

    def append(self, kind: str, data: Mapping[str, Any]) -> object: ...


@dataclass(frozen=True)
class Release:
    """A verified, loaded release from the state directory."""

    path: Path
    manifest: Manifest
    manifest_sha256: str
    index: TemplateIndex
    content: ListContent


@dataclass(frozen=True)
class InstallResult:
    list_id: str
    version: int
    kind: str
    previous_version: int | None
    entries: int
    templates: int
    release: Path


def _copy_synced(src: Path, dst: Path) -> None:
    try:
        # O_NONBLOCK: a FIFO put in place of a checked file must not block the open.
        fd = os.open(src, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as fin, dst.open("wb") as fout:
            if not stat.S_ISREG(os.fstat(fin.fileno()).st_mode):
                raise BundleError("files", f"{src} is not a regular file")
            shutil.copyfileobj(fin, fout, 1 << 20)
            fout.flush()
            os.fsync(fout.fileno())
    except FileNotFoundError as exc:
        raise BundleError("files", f"{src.name} is missing from {src.parent}") from exc
    except OSError as exc:
        raise WatchlistError(f"cannot copy {src} to {dst}: {exc.strerror or exc}") from exc


class WatchlistStore:
    """The watchlist state directory of one device."""

    def __init__(
        self,
        root: Path,
        public_key: keyring.TrustedKey,
        model: ModelPin,
        *,
        clock_skew_s: int = 300,
        keep_releases: int = 2,
        audit: AuditSink | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.root = root
        self.public_key = public_key
        self.model = model
        self.clock_skew = timedelta(seconds=clock_skew_s)
        self.keep_releases = max(1, keep_releases)
        self.audit = audit
        self.clock = clock

    # --- reading the active release ---------------------------------------------------------

    def current_path(self) -> Path | None:
        link = self.root / CURRENT
        if not link.is_symlink():
            return None
        return self.root / os.readlink(link)

    def load_release(self, path: Path, expansion_search: int = 96) -> Release:
        """Verify and load a release folder: signature, then contents against the digests.

        The index is memory-mapped (release folders never change once renamed into place):
        no copy in memory, pages shared with the page cache, instant start.
        """
        raw, signature = read_signed_manifest(path)
        keyring.verify_signature(self.public_key, raw, signature, None)
        manifest = parse_manifest(raw)
        if manifest.kind == "full":
            check_files(path, manifest)
            index, content = load_full(
                VerifiedBundle(path, manifest, raw, signature), expansion_search, view=True
            )
        else:
            # A delta is stored applied: the signed content digests vouch for the files.
            entries_raw = read_bundle_file(path / ENTRIES)
            if sha256_bytes(entries_raw) != manifest.entries_sha256:
                raise BundleError("content", f"{ENTRIES} differs from the one the hub signed")
            entries = parse_entries(entries_raw, ENTRIES)
            index, content = load_templates(
                path / INDEX, entries, manifest.index_params(expansion_search), view=True
            )
            check_content(manifest, content)
        return Release(path, manifest, sha256_bytes(raw), index, content)

    def active(self, expansion_search: int = 96) -> Release | None:
        path = self.current_path()
        if path is None:
            return None
        return self.load_release(path, expansion_search)

    def active_manifest(self) -> tuple[Manifest, str] | None:
        """The active manifest (signature checked, contents not), or None."""
        path = self.current_path()
        if path is None:
            return None
        try:
            raw, signature = read_signed_manifest(path)
        except BundleError as exc:
            raise BundleError("files", f"installed list unreadable: {exc.detail}") from exc
        keyring.verify_signature(self.public_key, raw, signature, None)
        return parse_manifest(raw), sha256_bytes(raw)

    def load(self, settings: WatchlistConfig, *, top_k: int | None = None) -> Watchlist | None:
        """The active list as a :class:`Watchlist`, or None if none is installed."""
        expansion_search = settings.expansion_search
        release = self.active(expansion_search)
        if release is None:
            return None
        # Verified; now serve from a view without the key table (about 32 bytes a template).
        serving = TemplateIndex.load(
            release.path / INDEX,
            release.manifest.index_params(expansion_search),
            release.manifest.template_count,
            view=True,
            lookups=False,
        )
        return Watchlist.from_content(
            release.manifest,
            release.manifest_sha256,
            release.content,
            serving,
            calibration_of(release.manifest),
            top_k=top_k or settings.top_k,
            exact_search_max=settings.exact_search_max,
            clock_skew_s=int(self.clock_skew.total_seconds()),
            clock=self.clock,
        )

    def follow(
        self, settings: WatchlistConfig
    ) -> tuple[Watchlist | None, Callable[[], Watchlist | None]]:
        """The active list, and a function that returns the list installed since, or None
        while the active release is still the one last returned (a running recognizer polls
        it to switch lists without a restart)."""
        loaded_from = self.current_path()
        watchlist = self.load(settings)

        def newer() -> Watchlist | None:
            nonlocal loaded_from
            current = self.current_path()
            if current is None or current == loaded_from:
                return None
            fresh = self.load(settings)
            loaded_from = current
            return fresh

        return watchlist, newer

    def _highwater(self) -> dict[str, int]:
        """The high-water mark of each list id. A file that cannot be trusted is an error that
        blocks installs (a guessed mark could allow a rollback): the message says what to fix."""
        path = self.root / HIGHWATER
        if not path.exists() and not path.is_symlink():
            return {}
        raw = read_bounded(path, MAX_HIGHWATER_BYTES, "high-water file", WatchlistError)
        try:
            data = load_json(raw)
        except ValueError as exc:
            raise WatchlistError(f"{path} is unreadable: {exc}") from exc
        if not isinstance(data, dict):
            raise WatchlistError(f"{path} is not a JSON object")
        marks: dict[str, int] = {}
        for list_id, mark in data.items():
            if isinstance(mark, bool) or not isinstance(mark, int) or not 1 <= mark <= MAX_VERSION:
                shown = json.dumps(mark)
                shown = shown if len(shown) <= 40 else shown[:37] + "..."
                raise WatchlistError(
                    f"{path}: the mark of list {list_id[:64]!r} is {shown}, not a version from 1 "
                    f"to 2^53: correct or remove that entry (installs are refused until then)"
                )
            marks[list_id] = mark
        return marks

    # --- install ----------------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        try:
            (self.root / RELEASES).mkdir(parents=True, exist_ok=True)
            fd = os.open(self.root / LOCK, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise WatchlistError(
                f"cannot use state directory {self.root}: {exc.strerror or exc}"
            ) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def install(self, bundle: Path, *, replace_list: bool = False) -> InstallResult:
        """Verify ``bundle`` and make it the active list; on any failure keep the old one."""
        try:
            with self._locked():
                try:
                    result = self._install(bundle, replace_list)
                except OSError as exc:  # disk full, permissions: the old list is still active
                    raise WatchlistError(
                        f"cannot install into {self.root}: {exc.strerror or exc}"
                    ) from exc
        except BundleError as exc:
            self._audit(
                {
                    "action": "refused",
                    "bundle": str(bundle),
                    "check": exc.check,
                    "reason": exc.detail,
                }
            )
            raise
        except WatchlistError as exc:
            self._audit({"action": "failed", "bundle": str(bundle), "reason": str(exc)})
            raise
        self._audit(
            {
                "action": "installed",
                "bundle": str(bundle),
                "list_id": result.list_id,
                "version": result.version,
                "kind": result.kind,
                "previous_version": result.previous_version,
                "entries": result.entries,
                "templates": result.templates,
            }
        )
        return result

    def _audit(self, data: dict[str, Any]) -> None:
        if self.audit is not None:
            self.audit.append(WATCHLIST_CHANGE, data)

    def _check_manifest(self, m: Manifest, current: Manifest | None, replace_list: bool) -> None:
        now = self.clock()
        if m.model != self.model:
            raise BundleError(
                "model",
                f"list made with embedding model {m.model.name} sha256 {m.model.sha256[:12]}..., "
                f"this device runs {self.model.name} sha256 {self.model.sha256[:12]}...",
            )
        if is_expired(m.valid_until_at, now):
            raise BundleError(
                "validity", f"list expired at {m.valid_until} (now {format_time(now)})"
            )
        if now + self.clock_skew < m.valid_from_at:
            raise BundleError(
                "validity", f"list is valid only from {m.valid_from} (now {format_time(now)})"
            )
        if current is not None and current.list_id != m.list_id and not replace_list:
            raise BundleError(
                "list",
                f"installed list is {current.list_id!r}, bundle is {m.list_id!r} "
                "(use --replace-list to switch lists)",
            )
        floor = self._highwater().get(m.list_id, 0)
        if current is not None and current.list_id == m.list_id:
            floor = max(floor, current.version)
        if m.version <= floor:
            raise BundleError(
                "version",
                f"bundle version {m.version} is not newer than version {floor}, already "
                "installed (no rollback)",
            )

    def _install(self, bundle: Path, replace_list: bool) -> InstallResult:
        vb = read_bundle(bundle, self.public_key)
        m = vb.manifest
        try:
            active = self.active_manifest()
        except BundleError as exc:
            if vb.manifest.kind != "full":
                raise BundleError("base", f"the installed list is unusable: {exc}") from exc
            # A full bundle may replace a damaged list; highwater.json still blocks rollback.
            log.warning("installed watchlist is unusable (%s); replacing it", exc)
            active = None
        current = active[0] if active is not None else None
        self._check_manifest(m, current, replace_list)
        self._sweep_staging()
        staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=self.root))
        try:
            if m.kind == "full":
                # What was copied is what gets checked and loaded below, not the source folder.
                for name in (MANIFEST, SIGNATURE, INDEX, ENTRIES):
                    _copy_synced(bundle / name, staging / name)
            else:
                if current is None:
                    raise BundleError("base", "a delta needs an installed list to apply to")
                if current.list_id != m.list_id:
                    raise BundleError(
                        "base", f"delta is for list {m.list_id!r}, installed is {current.list_id!r}"
                    )
                base = self.active()
                assert base is not None
                content = apply_delta(base.content, base.manifest, vb)
                index = content.build_index(m.index_params())
                index.save(staging / INDEX)
                with (staging / INDEX).open("rb") as fh:
                    os.fsync(fh.fileno())
                write_synced(staging / ENTRIES, content.entries_bytes())
                write_synced(staging / MANIFEST, vb.manifest_bytes)
                write_synced(staging / SIGNATURE, vb.signature)
            release = self.load_release(staging)  # exactly as the runtime will load it
            if release.manifest_sha256 != vb.manifest_sha256:
                raise BundleError("files", "the bundle changed while it was being installed")
            fsync_path(staging)
            final = self.root / RELEASES / f"{m.list_id}-v{m.version}"
            if final.exists():  # left over from an earlier attempt, never the active one
                shutil.rmtree(final)
            os.rename(staging, final)
            fsync_path(final.parent)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        self._activate(final)
        self._record_highwater(m.list_id, m.version)
        self._prune(final)
        log.info(
            "watchlist %s v%d installed (%s, %d entries, %d templates)",
            m.list_id,
            m.version,
            m.kind,
            m.entry_count,
            m.template_count,
        )
        return InstallResult(
            list_id=m.list_id,
            version=m.version,
            kind=m.kind,
            previous_version=current.version if current is not None else None,
            entries=len(release.content.entries),
            templates=release.content.template_count,
            release=final,
        )

    def _activate(self, release: Path) -> None:
        tmp = self.root / f"{CURRENT}.tmp"
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        os.symlink(os.path.relpath(release, self.root), tmp)
        os.replace(tmp, self.root / CURRENT)
        fsync_path(self.root)

    def _record_highwater(self, list_id: str, version: int) -> None:
        marks = self._highwater()
        marks[list_id] = max(version, marks.get(list_id, 0))
        tmp = self.root / f"{HIGHWATER}.tmp"
        write_synced(tmp, json.dumps(marks, sort_keys=True).encode())
        os.replace(tmp, self.root / HIGHWATER)
        fsync_path(self.root)

    def _sweep_staging(self) -> None:
        for leftover in self.root.glob(f"{STAGING_PREFIX}*"):
            shutil.rmtree(leftover, ignore_errors=True)

    def _prune(self, active: Path) -> None:
        releases = [p for p in (self.root / RELEASES).iterdir() if p.is_dir() and p != active]
        releases.sort(key=lambda p: p.stat().st_mtime, reverse=True)
        for old in releases[self.keep_releases - 1 :]:
            shutil.rmtree(old, ignore_errors=True)


def open_store(
    config: Config,
    *,
    state_dir: Path | None = None,
    public_key: Path | None = None,
    audit: AuditSink | None = None,
) -> WatchlistStore:
    """This device's store, as the config says: trusted key (``public_key`` overrides
    ``watchlist.public_key``, else the state directory's trust store), state directory, and the
    embedding model this build runs."""
    wl = config.watchlist
    paths = config.paths(state_dir)
    return WatchlistStore(
        paths.watchlist,
        keyring.trusted_key(public_key, wl.public_key, paths.trust),
        embedding_pin(),
        clock_skew_s=wl.clock_skew_s,
        keep_releases=wl.keep_releases,
        audit=audit,
    )
