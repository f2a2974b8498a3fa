"""The watchlist bundle's manifest: the file names of a bundle, the typed :class:`Manifest`,
its JSON (:meth:`Manifest.to_json`) and strict parsing (:func:`parse_manifest`).

``manifest.json`` says what the list is (id, version, validity window, embedding model pin,
index settings, threshold policy, counts), digests of its complete contents, and the sha256 and
size of every other file of the bundle, in canonical JSON (sorted keys, no spaces, UTF-8).
Reading and verifying a bundle: :mod:`edge.watchlist.bundle`; building one:
:mod:`edge.watchlist.writer`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from edge.clock import format_time, parse_time
from edge.config.base import TOPIC_ID_PATTERN
from edge.errors import BundleError, WatchlistError
from edge.models import ModelPin
from edge.system.inputs import load_json
from edge.watchlist.index import DTYPES, METRIC, Dtype, IndexParams
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
        return _manifest(data)
    except BundleError:
        raise
    except KeyError as exc:
        raise BundleError("manifest", f"manifest.json lacks field {exc}") from exc
    except (TypeError, ValueError, WatchlistError) as exc:
        raise BundleError("manifest", f"manifest.json: {exc}") from exc


def _manifest(data: Any) -> Manifest:
    """The manifest of the decoded JSON; ``ValueError``, ``KeyError`` or ``TypeError`` (via
    :func:`_require` and plain indexing) say what is wrong, checked in the order written."""
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
    files = _files(data["files"], kind)
    delta = _delta(data, kind)
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
    return manifest


def _files(listed: Any, kind: str) -> dict[str, FileRef]:
    """The ``files`` section: exactly the files of a full bundle or of a delta."""
    files: dict[str, FileRef] = {}
    _require(isinstance(listed, dict), "files must be an object")
    for name, ref in listed.items():
        _require(name in (INDEX, ENTRIES, DELTA_INDEX, DELTA_ENTRIES), f"unknown file {name!r}")
        files[name] = FileRef(_sha(ref["sha256"], f"{name}.sha256"), _int(ref["bytes"], name))
    expected_files = {INDEX, ENTRIES} if kind == "full" else {DELTA_INDEX, DELTA_ENTRIES}
    _require(set(files) == expected_files, f"files must be {sorted(expected_files)}")
    return files


def _delta(data: dict[str, Any], kind: str) -> DeltaInfo | None:
    """The ``delta`` section a delta must have and a full bundle must not."""
    if kind != "delta":
        _require("delta" not in data, "a full bundle has no delta section")
        return None
    d = data["delta"]
    removes = d["remove_entries"]
    _require(isinstance(removes, list), "delta.remove_entries must be a list")
    return DeltaInfo(
        base_version=_version(d["base_version"], "delta.base_version"),
        base_entries_sha256=_sha(d["base_entries_sha256"], "delta.base_entries_sha256"),
        base_templates_sha256=_sha(d["base_templates_sha256"], "delta.base_templates_sha256"),
        remove_entries=tuple(_int(x, "delta.remove_entries[]") for x in removes),
        add_entries=_int(d["add_entries"], "delta.add_entries"),
        add_templates=_int(d["add_templates"], "delta.add_templates"),
    )
