"""The watchlist bundle: its format, and reading and verifying it (building: :mod:`writer`).

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
import re
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from edge.clock import format_time, parse_time
from edge.config.base import TOPIC_ID_PATTERN
from edge.errors import BundleError, WatchlistError
from edge.models import ModelPin, file_sha256
from edge.system.inputs import load_json, read_bounded
from edge.watchlist import keys as keyring
from edge.watchlist.entries import Entry, ListContent, parse_entries
from edge.watchlist.index import (
    DTYPES,
    METRIC,
    Dtype,
    IndexParams,
    TemplateIndex,
)
from edge.watchlist.policy import ThresholdPolicy

FORMAT = "edge-watchlist/1"
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
INDEX = "index.usearch"
ENTRIES = "entries.json"
DELTA_INDEX = "delta-index.usearch"
DELTA_ENTRIES = "delta-entries.json"
KEY_LAYOUT = "entry_id<<8|template"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
MAX_MANIFEST_BYTES = 1 << 20
MAX_SIGNATURE_BYTES = 1024  # an Ed25519 signature is 64 bytes; more is refused by its check
# The entries table is about 155 bytes an entry: 1,000,000 entries (far beyond what the model
# can tell apart, docs/watchlist.md) take 155 MB. A bigger file is refused before it is read.
MAX_ENTRIES_BYTES = 512 * 1024 * 1024
# Versions are JSON numbers, and JavaScript readers of a manifest (or of dispatch's API) lose
# integers above 2^53. A signed version beyond it would also pin the anti-rollback high-water
# mark out of reach for ever, so manifests, builds and the high-water file are bounded by it.
MAX_VERSION = 2**53
_MANIFEST_FIELDS = frozenset(
    {
        "format", "kind", "list_id", "version", "created", "valid_from", "valid_until",
        "signing_key_id", "embedding", "index", "threshold_policy", "counts", "content",
        "next_entry_id", "files", "delta",
    }
)  # fmt: skip


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- manifest -------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileRef:
    sha256: str
    bytes: int


@dataclass(frozen=True)
class DeltaInfo:
    """What a delta applies to (the base list's version and content digests) and changes."""

    base_version: int
    base_entries_sha256: str
    base_templates_sha256: str
    remove_entries: tuple[int, ...]
    add_entries: int
    add_templates: int


@dataclass(frozen=True)
class Manifest:
    kind: Literal["full", "delta"]
    list_id: str
    version: int
    created: str
    valid_from: str
    valid_until: str
    signing_key_id: str
    model: ModelPin
    dim: int
    dtype: Dtype
    connectivity: int
    expansion_add: int
    policy: ThresholdPolicy
    entry_count: int
    template_count: int
    entries_sha256: str
    templates_sha256: str
    next_entry_id: int
    files: Mapping[str, FileRef]
    delta: DeltaInfo | None = None

    @property
    def valid_from_at(self) -> datetime:
        return parse_time(self.valid_from)

    @property
    def valid_until_at(self) -> datetime:
        return parse_time(self.valid_until)

    def index_params(self, expansion_search: int = 96) -> IndexParams:
        return IndexParams(
            ndim=self.dim,
            dtype=self.dtype,
            connectivity=self.connectivity,
            expansion_add=self.expansion_add,
            expansion_search=expansion_search,
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "format": FORMAT,
            "kind": self.kind,
            "list_id": self.list_id,
            "version": self.version,
            "created": self.created,
            "valid_from": self.valid_from,
            "valid_until": self.valid_until,
            "signing_key_id": self.signing_key_id,
            "embedding": {"model": self.model.name, "sha256": self.model.sha256, "dim": self.dim},
            "index": {
                "metric": METRIC,
                "dtype": self.dtype,
                "connectivity": self.connectivity,
                "expansion_add": self.expansion_add,
                "key_layout": KEY_LAYOUT,
            },
            "threshold_policy": self.policy.to_json(),
            "counts": {"entries": self.entry_count, "templates": self.template_count},
            "content": {
                "entries_sha256": self.entries_sha256,
                "templates_sha256": self.templates_sha256,
            },
            "next_entry_id": self.next_entry_id,
            "files": {
                name: {"sha256": ref.sha256, "bytes": ref.bytes}
                for name, ref in sorted(self.files.items())
            },
        }
        if self.delta is not None:
            out["delta"] = {
                "base_version": self.delta.base_version,
                "base_entries_sha256": self.delta.base_entries_sha256,
                "base_templates_sha256": self.delta.base_templates_sha256,
                "remove_entries": list(self.delta.remove_entries),
                "add_entries": self.delta.add_entries,
                "add_templates": self.delta.add_templates,
            }
        return out


def _require(cond: bool, message: str) -> None:
    if not cond:
        raise ValueError(message)


def _int(value: Any, name: str, minimum: int = 0) -> int:
    _require(
        isinstance(value, int) and not isinstance(value, bool) and value >= minimum,
        f"{name} must be an integer >= {minimum}",
    )
    return int(value)


def _version(value: Any, name: str) -> int:
    _require(
        isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_VERSION,
        f"{name} must be an integer from 1 to 2^53 ({MAX_VERSION})",
    )
    return int(value)


def _sha(value: Any, name: str) -> str:
    _require(isinstance(value, str) and bool(_SHA256.fullmatch(value)), f"{name} must be a sha256")
    return str(value)


def _key_id(value: Any) -> str:
    _require(isinstance(value, str) and 0 < len(value) <= 64, "signing_key_id must be a key id")
    return str(value)


def _time(value: Any, name: str) -> str:
    _require(isinstance(value, str), f"{name} must be a string")
    canonical = format_time(parse_time(value, name))  # TimeFormatError is a ValueError
    _require(canonical == value, f"{name} {value!r} is not a canonical UTC time")
    return str(value)


def parse_manifest(raw: bytes) -> Manifest:
    """Parse and validate manifest.json; any problem is a :class:`BundleError` (``manifest``)."""
    try:
        try:
            data = load_json(raw)
        except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError included
            raise BundleError("manifest", f"manifest.json is not valid JSON: {exc}") from exc
        _require(isinstance(data, dict), "the manifest must be a JSON object")
        _require(data.get("format") == FORMAT, f"format must be {FORMAT!r}")
        unknown = set(data) - _MANIFEST_FIELDS
        _require(not unknown, f"unknown field(s) {', '.join(repr(u) for u in sorted(unknown))}")
        kind = data["kind"]
        _require(kind in ("full", "delta"), "kind must be 'full' or 'delta'")
        list_id = data["list_id"]
        _require(
            isinstance(list_id, str) and bool(re.fullmatch(TOPIC_ID_PATTERN, list_id)),
            "list_id must be 1-64 letters, digits, '.', '_' or '-'",
        )
        embedding = data["embedding"]
        model_name = embedding["model"]
        _require(isinstance(model_name, str) and bool(model_name), "embedding.model missing")
        model = ModelPin(model_name, _sha(embedding["sha256"], "embedding.sha256"))
        index = data["index"]
        _require(index["metric"] == METRIC, f"index.metric must be {METRIC!r}")
        _require(index["dtype"] in DTYPES, f"index.dtype must be one of {DTYPES}")
        _require(index["key_layout"] == KEY_LAYOUT, f"index.key_layout must be {KEY_LAYOUT!r}")
        counts = data["content"], data["counts"]
        files: dict[str, FileRef] = {}
        _require(isinstance(data["files"], dict), "files must be an object")
        for name, ref in data["files"].items():
            _require(name in (INDEX, ENTRIES, DELTA_INDEX, DELTA_ENTRIES), f"unknown file {name!r}")
            files[name] = FileRef(_sha(ref["sha256"], f"{name}.sha256"), _int(ref["bytes"], name))
        expected_files = {INDEX, ENTRIES} if kind == "full" else {DELTA_INDEX, DELTA_ENTRIES}
        _require(set(files) == expected_files, f"files must be {sorted(expected_files)}")
        delta = None
        if kind == "delta":
            d = data["delta"]
            removes = d["remove_entries"]
            _require(isinstance(removes, list), "delta.remove_entries must be a list")
            delta = DeltaInfo(
                base_version=_version(d["base_version"], "delta.base_version"),
                base_entries_sha256=_sha(d["base_entries_sha256"], "delta.base_entries_sha256"),
                base_templates_sha256=_sha(
                    d["base_templates_sha256"], "delta.base_templates_sha256"
                ),
                remove_entries=tuple(_int(x, "delta.remove_entries[]") for x in removes),
                add_entries=_int(d["add_entries"], "delta.add_entries"),
                add_templates=_int(d["add_templates"], "delta.add_templates"),
            )
        else:
            _require("delta" not in data, "a full bundle has no delta section")
        manifest = Manifest(
            kind=kind,
            list_id=list_id,
            version=_version(data["version"], "version"),
            created=_time(data["created"], "created"),
            valid_from=_time(data["valid_from"], "valid_from"),
            valid_until=_time(data["valid_until"], "valid_until"),
            signing_key_id=_key_id(data["signing_key_id"]),
            model=model,
            dim=_int(embedding["dim"], "embedding.dim", 1),
            dtype=index["dtype"],
            connectivity=_int(index["connectivity"], "index.connectivity", 2),
            expansion_add=_int(index["expansion_add"], "index.expansion_add", 1),
            policy=ThresholdPolicy.from_json(data["threshold_policy"]),
            entry_count=_int(counts[1]["entries"], "counts.entries"),
            template_count=_int(counts[1]["templates"], "counts.templates"),
            entries_sha256=_sha(counts[0]["entries_sha256"], "content.entries_sha256"),
            templates_sha256=_sha(counts[0]["templates_sha256"], "content.templates_sha256"),
            next_entry_id=_int(data["next_entry_id"], "next_entry_id"),
            files=files,
            delta=delta,
        )
        _require(
            manifest.valid_until_at > manifest.valid_from_at, "valid_until must be after valid_from"
        )
        if kind == "full":
            _require(
                files[ENTRIES].sha256 == manifest.entries_sha256,
                "content.entries_sha256 must equal the sha256 of entries.json",
            )
    except BundleError:
        raise
    except KeyError as exc:
        raise BundleError("manifest", f"manifest.json lacks field {exc}") from exc
    except (TypeError, ValueError, WatchlistError) as exc:
        raise BundleError("manifest", f"manifest.json: {exc}") from exc
    return manifest


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
