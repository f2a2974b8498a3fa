"""Planning and holding a watchlist transfer, before and while it is fetched (pure, no MQTT).

- :func:`plan`: what a device does about an announcement, given the list it holds: fetch the
  delta or the full bundle, or skip (and why). The announced manifest's signature, model,
  validity and delta base are checked here, before a single chunk is fetched.
- :class:`PartialTransfer`: the chunks received so far, in a sparse file that survives restarts.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from edge.clock import utc_now
from edge.errors import BundleError, SyncError
from edge.fleet.protocol import Announcement, TransferInfo
from edge.models import ModelPin
from edge.watchlist import keys as keyring
from edge.watchlist.manifest import Manifest, parse_manifest
from edge.watchlist.policy import is_expired

# --- checks before fetching -----------------------------------------------------------------------


@dataclass(frozen=True)
class Installed:
    """The list the device holds now (from the store's signed manifest)."""

    list_id: str
    version: int
    entries_sha256: str
    templates_sha256: str

    @classmethod
    def of(cls, manifest: Manifest) -> Installed:
        return cls(
            manifest.list_id, manifest.version, manifest.entries_sha256, manifest.templates_sha256
        )


def verify_transfer(
    info: TransferInfo, announcement: Announcement, public_key: keyring.TrustedKey
) -> Manifest:
    """Check the announced bundle manifest's signature and that it is what the announcement
    says it is. Raises :class:`BundleError` (``signature``/``manifest``) or :class:`SyncError`."""
    keyring.verify_signature(public_key, info.manifest_bytes, info.signature, None)
    manifest = parse_manifest(info.manifest_bytes)
    if (manifest.list_id, manifest.version, manifest.kind) != (
        announcement.list_id,
        announcement.version,
        info.kind,
    ):
        raise SyncError(
            f"announcement of {announcement.list_id} v{announcement.version} ({info.kind}) "
            f"carries the manifest of {manifest.list_id} v{manifest.version} ({manifest.kind})"
        )
    return manifest


@dataclass(frozen=True)
class Plan:
    """What to do about one announced list: ``fetch`` a transfer, or ``skip`` (with state)."""

    action: str  # "fetch" | "skip"
    state: str
    detail: str = ""
    transfer: TransferInfo | None = None
    replace_list: bool = False


def plan(
    announcement: Announcement,
    installed: Installed | None,
    lists: list[str],
    public_key: keyring.TrustedKey,
    model: ModelPin,
    *,
    refused: frozenset[str] = frozenset(),
) -> Plan:
    """Decide what a device following ``lists`` (most preferred first) does about an
    announcement, given the list it holds. Pure: no I/O."""
    lid = announcement.list_id
    early = _skip_early(announcement, installed, lists)
    if early is not None:
        return early
    same_list = installed is not None and installed.list_id == lid
    candidates: list[TransferInfo] = []
    delta = announcement.transfer("delta")
    full = announcement.transfer("full")
    if (
        delta is not None
        and same_list
        and installed is not None
        and delta.base_version == installed.version
        and delta.sha256 not in refused
    ):
        candidates.append(delta)
    if full is not None and full.sha256 not in refused:
        candidates.append(full)
    if not candidates:
        if full is None and delta is not None:
            have = f"version {installed.version}" if same_list and installed else "no version"
            return Plan(
                "skip",
                "waiting",
                f"only a delta against version {delta.base_version} is announced and this "
                f"device has {have}: publish the full bundle too",
            )
        return Plan("skip", "refused", "every announced transfer was refused")
    errors: list[str] = []
    for transfer in candidates:
        refusal = _refusal(transfer, announcement, installed, public_key, model)
        if refusal is not None:
            errors.append(refusal)
            continue
        return Plan(
            "fetch",
            "fetching",
            f"{transfer.kind} v{announcement.version}",
            transfer,
            replace_list=installed is not None and installed.list_id != lid,
        )
    return Plan("skip", "refused", "; ".join(errors))


def _skip_early(
    announcement: Announcement, installed: Installed | None, lists: list[str]
) -> Plan | None:
    """Skip a list not followed, one less preferred than the list held, or a version held."""
    lid = announcement.list_id
    if lid not in lists:
        return Plan("skip", "not followed")
    if (
        installed is not None
        and installed.list_id != lid
        and installed.list_id in lists
        and lists.index(installed.list_id) < lists.index(lid)
    ):
        return Plan("skip", "standby", f"holding the preferred list {installed.list_id}")
    same_list = installed is not None and installed.list_id == lid
    if same_list and installed is not None and installed.version >= announcement.version:
        return Plan("skip", "current", f"version {installed.version} installed")
    return None


def _refusal(
    transfer: TransferInfo,
    announcement: Announcement,
    installed: Installed | None,
    public_key: keyring.TrustedKey,
    model: ModelPin,
) -> str | None:
    """Why this announced transfer cannot be installed here (signature, model, validity, delta
    base), or None when it can."""
    try:
        manifest = verify_transfer(transfer, announcement, public_key)
    except (BundleError, SyncError) as exc:
        return str(exc)
    if manifest.model != model:
        return (
            f"watchlist refused (model check): list made with {manifest.model.name} "
            f"{manifest.model.sha256[:12]}..., this device runs {model.name} "
            f"{model.sha256[:12]}..."
        )
    if is_expired(manifest.valid_until_at, utc_now()):
        return f"watchlist refused (validity check): expired at {manifest.valid_until}"
    if transfer.kind == "delta" and installed is not None and manifest.delta is not None:
        d = manifest.delta
        if (d.base_entries_sha256, d.base_templates_sha256) != (
            installed.entries_sha256,
            installed.templates_sha256,
        ):
            return "the delta's base content differs from the installed list"
    return None


# --- a transfer on disk ---------------------------------------------------------------------------


class PartialTransfer:
    """The chunks of one transfer received so far, in a sparse file of the archive's size."""

    def __init__(self, directory: Path, info: TransferInfo) -> None:
        self.info = info
        self.directory = directory
        self.path = directory / f"{info.sha256}.part"
        self.have: set[int] = set()
        self._fd: int | None = None

    def open(self) -> int:
        """Open (or create) the file; returns how many verified chunks it already holds."""
        existed = self.path.exists()
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            if os.fstat(fd).st_size != self.info.size:
                os.ftruncate(fd, self.info.size)
        except OSError as exc:
            raise SyncError(f"cannot use {self.path}: {exc.strerror or exc}") from exc
        self._fd = fd
        if not existed:
            return 0
        for n, digest in enumerate(self.info.chunks):
            offset, length = self.info.chunk_span(n)
            data = os.pread(fd, length, offset)
            if hashlib.sha256(data).hexdigest() == digest:
                self.have.add(n)
        return len(self.have)

    def missing(self) -> list[int]:
        return [n for n in range(len(self.info.chunks)) if n not in self.have]

    @property
    def complete(self) -> bool:
        return len(self.have) == len(self.info.chunks)

    def put(self, n: int, data: bytes) -> bool:
        """Store chunk ``n`` if it is the announced one; False (nothing written) if not."""
        offset, length = self.info.chunk_span(n)
        if len(data) != length or hashlib.sha256(data).hexdigest() != self.info.chunks[n]:
            return False
        assert self._fd is not None
        try:
            os.pwrite(self._fd, data, offset)
        except OSError as exc:
            raise SyncError(f"cannot write {self.path}: {exc.strerror or exc}") from exc
        self.have.add(n)
        return True

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def finish(self) -> Path:
        """fsync and check the whole archive's sha256; returns the archive path."""
        assert self._fd is not None
        os.fsync(self._fd)
        digest = hashlib.sha256()
        with self.path.open("rb") as fh:
            while block := fh.read(1 << 20):
                digest.update(block)
        if digest.hexdigest() != self.info.sha256:
            raise SyncError(
                f"transfer {self.info.sha256[:12]}: the reassembled archive has sha256 "
                f"{digest.hexdigest()[:12]}..."
            )
        return self.path

    def discard(self) -> None:
        self.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        shutil.rmtree(self.unpacked, ignore_errors=True)

    @property
    def unpacked(self) -> Path:
        return self.directory / f"{self.info.sha256}.d"
