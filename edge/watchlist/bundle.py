"""The watchlist bundle: reading and verifying it (its manifest: :mod:`manifest`; building:
:mod:`writer`).

A bundle is a directory:

- ``manifest.json``: what the list is (id, version, validity window, embedding model pin, index
  settings, threshold policy, counts), digests of its complete contents, and the sha256 and size
  of every other file. Canonical JSON (sorted keys, no spaces, UTF-8).
- ``manifest.sig``: the Ed25519 signature (64 raw bytes) of the exact bytes of manifest.json.
- a full bundle: ``index.usearch`` (every template) and ``entries.json`` (every entry);
- a delta: ``delta-index.usearch`` and ``delta-entries.json`` (the entries added or replaced)
  plus, in the manifest, the entries removed and the exact base (version and manifest sha256)
  it applies to.

The manifest's ``content`` digests (entries table bytes, templates in key order) describe the
whole list after the bundle is applied, for full bundles and deltas alike, so a device checks
that base + delta produced exactly the list the hub signed. See docs/watchlist.md.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from edge.errors import BundleError, WatchlistError
from edge.models import file_sha256
from edge.system.inputs import read_bounded
from edge.watchlist import keys as keyring
from edge.watchlist.entries import Entry, ListContent, parse_entries
from edge.watchlist.index import IndexParams, TemplateIndex
from edge.watchlist.manifest import (
    DELTA_ENTRIES,
    DELTA_INDEX,
    ENTRIES,
    INDEX,
    MANIFEST,
    SIGNATURE,
    Manifest,
    parse_manifest,
)

MAX_MANIFEST_BYTES = 1 << 20
MAX_SIGNATURE_BYTES = 1024  # an Ed25519 signature is 64 bytes; more is refused by its check
# The entries table is about 155 bytes an entry: 1,000,000 entries (far beyond what the model
# can tell apart, docs/watchlist.md) take 155 MB. A bigger file is refused before it is read.
MAX_ENTRIES_BYTES = 512 * 1024 * 1024


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- reading and verifying ------------------------------------------------------------------


@dataclass(frozen=True)
class VerifiedBundle:
    """A bundle whose signature and file hashes were checked; contents not yet loaded."""

    path: Path
    manifest: Manifest
    manifest_bytes: bytes
    signature: bytes

    @property
    def manifest_sha256(self) -> str:
        return sha256_bytes(self.manifest_bytes)


def _files_error(message: str) -> BundleError:
    return BundleError("files", message)


def read_bundle_file(path: Path, limit: int = MAX_ENTRIES_BYTES) -> bytes:
    """A bundle file read whole: a regular file of at most ``limit`` bytes, else a refusal
    (check ``files``)."""
    if not path.exists() and not path.is_symlink():
        raise BundleError("files", f"{path.name} is missing from {path.parent}")
    return read_bounded(path, limit, "bundle file", _files_error)


def read_signed_manifest(path: Path) -> tuple[bytes, bytes]:
    """The raw bytes of a bundle's (or release's) ``manifest.json`` and ``manifest.sig``."""
    return (
        read_bundle_file(path / MANIFEST, MAX_MANIFEST_BYTES),
        read_bundle_file(path / SIGNATURE, MAX_SIGNATURE_BYTES),
    )


def check_files(path: Path, manifest: Manifest) -> None:
    """Every file the manifest lists is a regular file with its recorded size and sha256."""
    for name, ref in sorted(manifest.files.items()):
        file = path / name
        try:
            info = file.stat()
        except FileNotFoundError as exc:
            raise BundleError("files", f"{name} is missing from {path}") from exc
        except OSError as exc:
            raise BundleError("files", f"cannot read {file}: {exc.strerror or exc}") from exc
        if not stat.S_ISREG(info.st_mode):
            raise BundleError("files", f"{file} is not a regular file")
        size = info.st_size
        if size != ref.bytes:
            raise BundleError(
                "hash", f"{name} is {size} bytes, the manifest says {ref.bytes} (truncated?)"
            )
        try:
            actual = file_sha256(file)
        except OSError as exc:
            raise BundleError("files", f"cannot read {file}: {exc.strerror or exc}") from exc
        if actual != ref.sha256:
            raise BundleError(
                "hash", f"{name} has sha256 {actual[:12]}..., manifest says {ref.sha256[:12]}..."
            )


def read_bundle(path: Path, public_key: keyring.TrustedKey) -> VerifiedBundle:
    """Check a bundle's signature, manifest and every file hash (in that order).

    The signature is checked over the raw bytes of manifest.json before they are parsed, so
    nothing an untrusted party wrote reaches the JSON parser."""
    if not path.exists():
        raise BundleError("files", f"{path} does not exist")
    if not path.is_dir():
        raise BundleError("files", f"{path} is not a bundle directory")
    raw, signature = read_signed_manifest(path)
    keyring.verify_signature(public_key, raw, signature, keyring.signer_hint(raw))
    manifest = parse_manifest(raw)
    check_files(path, manifest)
    return VerifiedBundle(path, manifest, raw, signature)


def read_unverified(path: Path) -> Manifest:
    """The manifest of a bundle, parsed but NOT authenticated (for `show`)."""
    if not path.is_dir():
        raise BundleError("files", f"{path} is not a bundle directory")
    return parse_manifest(read_bundle_file(path / MANIFEST, MAX_MANIFEST_BYTES))


def load_templates(
    index_path: Path, entries: Sequence[Entry], params: IndexParams, *, view: bool = False
) -> tuple[TemplateIndex, ListContent]:
    expected = sum(len(e.templates) for e in entries)
    index = TemplateIndex.load(index_path, params, expected, view=view)
    keys = index.keys()
    try:
        content = ListContent.create(entries, keys, index.vectors(keys))
    except WatchlistError as exc:
        raise BundleError("index", f"{index_path.name} does not match its entries: {exc}") from exc
    return index, content


def load_full(
    bundle: VerifiedBundle, expansion_search: int = 96, *, view: bool = False
) -> tuple[TemplateIndex, ListContent]:
    """Load the index and entries of a verified full bundle and check its content digests."""
    m = bundle.manifest
    if m.kind != "full":
        raise BundleError("kind", f"{bundle.path} is a delta, a full bundle is needed here")
    entries = parse_entries(read_bundle_file(bundle.path / ENTRIES), ENTRIES)
    index, content = load_templates(
        bundle.path / INDEX, entries, m.index_params(expansion_search), view=view
    )
    check_content(m, content)
    return index, content


def check_content(manifest: Manifest, content: ListContent) -> None:
    """The list matches the manifest's counts and content digests (check ``content``)."""
    if len(content.entries) != manifest.entry_count:
        raise BundleError(
            "content", f"{len(content.entries)} entries, manifest says {manifest.entry_count}"
        )
    if content.template_count != manifest.template_count:
        raise BundleError(
            "content",
            f"{content.template_count} templates, manifest says {manifest.template_count}",
        )
    if sha256_bytes(content.entries_bytes()) != manifest.entries_sha256:
        raise BundleError("content", "the entries table differs from the one the hub signed")
    if content.templates_digest() != manifest.templates_sha256:
        raise BundleError("content", "the templates differ from the ones the hub signed")
    if any(e.id >= manifest.next_entry_id for e in content.entries):
        raise BundleError("content", "an entry id is not below next_entry_id")


def apply_delta(base: ListContent, base_manifest: Manifest, delta: VerifiedBundle) -> ListContent:
    """base + delta -> the new list, checked against the delta's signed content digests.

    A delta names its base by list id, version and content digests, so it applies to that list
    however the device got it (a full bundle or an earlier delta).
    """
    m = delta.manifest
    if m.kind != "delta" or m.delta is None:
        raise BundleError("kind", f"{delta.path} is a full bundle, not a delta")
    d = m.delta
    if (
        base_manifest.list_id != m.list_id
        or base_manifest.version != d.base_version
        or base_manifest.entries_sha256 != d.base_entries_sha256
        or base_manifest.templates_sha256 != d.base_templates_sha256
    ):
        raise BundleError(
            "base",
            f"delta applies to {m.list_id} version {d.base_version} (content "
            f"{d.base_templates_sha256[:12]}...), installed is {base_manifest.list_id} version "
            f"{base_manifest.version} (content {base_manifest.templates_sha256[:12]}...)",
        )
    present = {e.id for e in base.entries}
    missing = [i for i in m.delta.remove_entries if i not in present]
    if missing:
        raise BundleError("delta", f"removes entries {missing[:5]} that the base does not hold")
    added = parse_entries(read_bundle_file(delta.path / DELTA_ENTRIES), DELTA_ENTRIES)
    if len(added) != m.delta.add_entries:
        raise BundleError(
            "delta", f"{len(added)} entries added, manifest says {m.delta.add_entries}"
        )
    _index, add = load_templates(delta.path / DELTA_INDEX, added, m.index_params())
    if add.template_count != m.delta.add_templates:
        raise BundleError(
            "delta", f"{add.template_count} templates added, manifest says {m.delta.add_templates}"
        )
    remaining = base.without(m.delta.remove_entries)
    try:
        result = remaining.plus(add)
    except WatchlistError as exc:
        raise BundleError("delta", f"added entries clash with the base: {exc}") from exc
    check_content(m, result)
    return result


# --- durable files ---------------------------------------------------------------------------


def write_synced(path: Path, data: bytes) -> None:
    with path.open("wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
