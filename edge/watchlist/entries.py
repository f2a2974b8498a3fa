"""The list's contents: its entries table (one row per person) and templates (one per photo).

The entries table is canonical JSON (``entries.json`` in a bundle); templates live in the usearch
index under keys ``entry_id << 8 | n``. :class:`ListContent` holds both for a whole list, so that
building, diffing and applying deltas work on one value whose digests the manifest signs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

from edge.clock import format_time, parse_time
from edge.errors import BundleError, WatchlistError
from edge.system.inputs import load_json
from edge.watchlist.index import (
    MAX_TEMPLATES_PER_ENTRY,
    IndexParams,
    KeyArray,
    StoredArray,
    TemplateIndex,
    make_key,
    templates_digest,
)

ENTRIES_FORMAT = "edge-watchlist-entries/1"
_PHOTO = re.compile(r"^[0-9a-f]{32}$")
TEXT_FIELDS = ("reason", "legal_basis", "case_ref")  # for dispatch only, never on a device
MAX_TEXT = 500


def canonical_json(obj: object) -> bytes:
    return json.dumps(
        obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


# --- entries --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Template:
    key: int
    photo: str  # first 32 hex digits of the sha256 of the source photo file
    quality: float

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "photo": self.photo, "quality": self.quality}


@dataclass(frozen=True)
class Entry:
    """One person on the list. Times are canonical UTC strings (``2025-01-31T00:00:00Z``)."""

    id: int
    label: str
    added: str
    templates: tuple[Template, ...]
    expires: str | None = None
    reason: str | None = None
    legal_basis: str | None = None
    case_ref: str | None = None

    @property
    def expires_at(self) -> datetime | None:
        return None if self.expires is None else parse_time(self.expires)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "label": self.label,
            "added": self.added,
            "templates": [t.to_json() for t in self.templates],
        }
        for name in ("expires", *TEXT_FIELDS):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        return out


def id_and_label(data: dict[str, Any], where: str) -> tuple[int, str]:
    """An entry's id and label, checked: what every file that names entries agrees on."""
    entry_id = data["id"]
    if not isinstance(entry_id, int) or isinstance(entry_id, bool) or entry_id < 0:
        raise ValueError(f"{where}: id must be a non-negative integer")
    label = data["label"]
    if not isinstance(label, str) or not label:
        raise ValueError(f"{where}: label must be a non-empty string")
    return entry_id, label


def _entry_from_json(data: Any, where: str) -> Entry:
    if not isinstance(data, dict):
        raise ValueError(f"{where}: an entry must be an object")
    allowed = {"id", "label", "added", "templates", "expires", *TEXT_FIELDS}
    unknown = set(data) - allowed
    if unknown:
        raise ValueError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
    entry_id, label = id_and_label(data, where)
    templates = []
    raw_templates = data["templates"]
    if not isinstance(raw_templates, list) or not raw_templates:
        raise ValueError(f"{where}: templates must be a non-empty list")
    if len(raw_templates) > MAX_TEMPLATES_PER_ENTRY:
        raise ValueError(f"{where}: more than {MAX_TEMPLATES_PER_ENTRY} templates")
    for number, t in enumerate(raw_templates):
        if not isinstance(t, dict) or set(t) != {"key", "photo", "quality"}:
            raise ValueError(f"{where}: template {number} must have key, photo and quality")
        if t["key"] != make_key(entry_id, number):
            raise ValueError(f"{where}: template {number} has key {t['key']}, not entry<<8|n")
        if not isinstance(t["photo"], str) or not _PHOTO.match(t["photo"]):
            raise ValueError(f"{where}: template {number} photo must be 32 hex digits")
        if not isinstance(t["quality"], int | float):
            raise ValueError(f"{where}: template {number} quality must be a number")
        templates.append(Template(int(t["key"]), t["photo"], float(t["quality"])))
    texts: dict[str, str | None] = {}
    for name in ("added", "expires", *TEXT_FIELDS):
        value = data.get(name)
        if value is not None and not isinstance(value, str):
            raise ValueError(f"{where}: {name} must be a string")
        texts[name] = value
    if texts["added"] is None:
        raise ValueError(f"{where}: added is missing")
    for name in ("added", "expires"):
        value = texts[name]
        if value is not None and format_time(parse_time(value, name)) != value:
            raise ValueError(f"{where}: {name} {value!r} is not a canonical UTC time")
    return Entry(
        id=entry_id,
        label=label,
        added=str(texts["added"]),
        templates=tuple(templates),
        expires=texts["expires"],
        reason=texts["reason"],
        legal_basis=texts["legal_basis"],
        case_ref=texts["case_ref"],
    )


def entries_bytes(entries: Sequence[Entry]) -> bytes:
    return canonical_json(
        {"format": ENTRIES_FORMAT, "entries": [e.to_json() for e in sorted(entries, key=_id)]}
    )


def _id(entry: Entry) -> int:
    return entry.id


def parse_entries(data: bytes, name: str) -> tuple[Entry, ...]:
    """Parse an entries table; any problem is a :class:`BundleError` of check ``entries``."""
    try:
        doc = load_json(data)
        if not isinstance(doc, dict) or doc.get("format") != ENTRIES_FORMAT:
            raise ValueError(f"format is not {ENTRIES_FORMAT}")
        if set(doc) != {"format", "entries"} or not isinstance(doc["entries"], list):
            raise ValueError("expected exactly 'format' and an 'entries' list")
        entries = tuple(
            _entry_from_json(item, f"entry {n}") for n, item in enumerate(doc["entries"])
        )
    except (KeyError, ValueError, WatchlistError) as exc:  # bad UTF-8 and JSON are ValueErrors
        raise BundleError("entries", f"{name}: {exc}") from exc
    ids = [e.id for e in entries]
    if ids != sorted(set(ids)):
        raise BundleError("entries", f"{name}: entry ids must be unique and ascending")
    labels = [e.label for e in entries]
    if len(set(labels)) != len(labels):
        raise BundleError("entries", f"{name}: labels must be unique")
    return entries


# --- list contents --------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class ListContent:
    """A whole list: its entries (ascending id) and templates (ascending key)."""

    entries: tuple[Entry, ...]
    keys: KeyArray
    vectors: StoredArray

    @classmethod
    def create(cls, entries: Iterable[Entry], keys: KeyArray, vectors: StoredArray) -> ListContent:
        ordered = tuple(sorted(entries, key=_id))
        keys = np.asarray(keys, dtype=np.uint64)
        order = np.argsort(keys, kind="stable")
        content = cls(ordered, keys[order], np.ascontiguousarray(vectors[order]))
        content.check()
        return content

    def check(self) -> None:
        ids = [e.id for e in self.entries]
        if len(set(ids)) != len(ids):
            raise WatchlistError("duplicate entry ids")
        labels = [e.label for e in self.entries]
        if len(set(labels)) != len(labels):
            raise WatchlistError("duplicate entry labels")
        expected = sorted(t.key for e in self.entries for t in e.templates)
        if expected != [int(k) for k in self.keys]:
            raise WatchlistError("template keys do not match the entries table")
        if len(self.vectors) != len(self.keys):
            raise WatchlistError("template count differs from vector count")

    @property
    def template_count(self) -> int:
        return len(self.keys)

    def entries_bytes(self) -> bytes:
        return entries_bytes(self.entries)

    def templates_digest(self) -> str:
        return templates_digest(self.keys, self.vectors)

    def by_label(self) -> dict[str, Entry]:
        return {e.label: e for e in self.entries}

    def vectors_of(self, entry: Entry) -> StoredArray:
        wanted = np.asarray([t.key for t in entry.templates], dtype=np.uint64)
        rows = np.searchsorted(self.keys, wanted)
        return self.vectors[rows]

    def without(self, entry_ids: Iterable[int]) -> ListContent:
        drop = set(entry_ids)
        entries = tuple(e for e in self.entries if e.id not in drop)
        keep = ~np.isin(self.keys >> np.uint64(8), np.asarray(sorted(drop), dtype=np.uint64))
        return ListContent(entries, self.keys[keep], self.vectors[keep])

    def plus(self, other: ListContent) -> ListContent:
        return ListContent.create(
            (*self.entries, *other.entries),
            np.concatenate([self.keys, other.keys]),
            np.concatenate([self.vectors, other.vectors]),
        )

    def build_index(self, params: IndexParams) -> TemplateIndex:
        return TemplateIndex.build(self.keys, self.vectors, params, threads=1)
