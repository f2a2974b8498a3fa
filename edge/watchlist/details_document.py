"""The signed document of a dispatch details file (:mod:`edge.watchlist.details`): its typed
model, its JSON and its strict parsing. Format 2 adds, per entry, the enrolled face of each
photo (``faces``); format 1 documents are still read."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge.clock import format_time, parse_time
from edge.config.base import TOPIC_ID_PATTERN
from edge.errors import BundleError
from edge.system.inputs import load_json
from edge.watchlist.entries import MAX_TEXT, TEXT_FIELDS, Entry, id_and_label
from edge.watchlist.index import MAX_TEMPLATES_PER_ENTRY
from edge.watchlist.writer import FaceBox

DETAILS_FORMAT_1 = "edge-watchlist-details/1"
DETAILS_FORMAT = "edge-watchlist-details/2"  # what builds write: format 1 and entries' faces
DETAILS_FORMATS = (DETAILS_FORMAT_1, DETAILS_FORMAT)
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_PHOTO_DIGEST = re.compile(r"^[0-9a-f]{32}$")
MAX_BOX_PX = 1 << 16
_DOC_FIELDS = frozenset(
    {"format", "list_id", "version", "created", "signing_key_id", "bundles", "entries"}
)
_ENTRY_FIELDS = {
    DETAILS_FORMAT_1: frozenset({"id", "label", "added", "expires", *TEXT_FIELDS}),
    DETAILS_FORMAT: frozenset({"id", "label", "added", "expires", "faces", *TEXT_FIELDS}),
}


@dataclass(frozen=True)
class EnrolledFace:
    """The face of one photo that became a template: ``box`` in the photo's pixels."""

    photo: str  # the photo's digest, as the entry's template names it
    box: FaceBox

    def to_json(self) -> dict[str, Any]:
        return {"photo": self.photo, "box": list(self.box)}


@dataclass(frozen=True)
class EntryDetails:
    """What dispatch shows of one entry. Times are canonical UTC strings."""

    id: int
    label: str
    added: str
    expires: str | None = None
    reason: str | None = None
    legal_basis: str | None = None
    case_ref: str | None = None
    faces: tuple[EnrolledFace, ...] = ()  # in the order of the entry's templates

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "label": self.label, "added": self.added}
        for name in ("expires", *TEXT_FIELDS):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        if self.faces:
            out["faces"] = [f.to_json() for f in self.faces]
        return out

    def face_of(self, photo: str) -> FaceBox | None:
        """The enrolled face's box in the photo with this digest, if the build recorded it."""
        return next((f.box for f in self.faces if f.photo == photo), None)

    @classmethod
    def of_entry(cls, entry: Entry) -> EntryDetails:
        """The details an entries table itself carries (bundles built before this file)."""
        return cls(
            entry.id,
            entry.label,
            entry.added,
            entry.expires,
            entry.reason,
            entry.legal_basis,
            entry.case_ref,
        )


@dataclass(frozen=True)
class BundleRef:
    kind: str  # "full" or "delta"
    manifest_sha256: str


@dataclass(frozen=True)
class ListDetails:
    list_id: str
    version: int
    created: str
    signing_key_id: str
    bundles: tuple[BundleRef, ...]
    entries: tuple[EntryDetails, ...]  # ascending id
    format: str = DETAILS_FORMAT  # format 1 (read from an older build) records no faces

    def to_json(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "list_id": self.list_id,
            "version": self.version,
            "created": self.created,
            "signing_key_id": self.signing_key_id,
            "bundles": [
                {"kind": b.kind, "manifest_sha256": b.manifest_sha256} for b in self.bundles
            ],
            "entries": [e.to_json() for e in self.entries],
        }

    def for_entries(self, entries: Sequence[Entry], where: Path) -> dict[int, EntryDetails]:
        """Details by entry id; refuses unless they describe exactly these entries."""
        mine = {e.id: e for e in self.entries}
        if set(mine) != {e.id for e in entries}:
            raise BundleError("details", f"{where}: its entries are not the bundle's entries")
        for entry in entries:
            d = mine[entry.id]
            if (d.label, d.added, d.expires) != (entry.label, entry.added, entry.expires):
                raise BundleError(
                    "details",
                    f"{where}: entry {entry.id} ({entry.label!r}) differs from the bundle's",
                )
            photos = {t.photo for t in entry.templates}
            stray = [f.photo for f in d.faces if f.photo not in photos]
            if stray:
                raise BundleError(
                    "details",
                    f"{where}: entry {entry.id} ({entry.label!r}) names the face of photo "
                    f"{stray[0]}, which none of its templates came from",
                )
        return mine


def _text(value: Any, name: str, limit: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > limit or "\n" in value:
        raise ValueError(f"{name} must be one line of at most {limit} characters")
    return value


def _time(value: Any, name: str, *, required: bool) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str) or format_time(parse_time(value, name)) != value:
        raise ValueError(f"{name} must be a canonical UTC time")
    return value


def _face(data: Any, where: str) -> EnrolledFace:
    if not isinstance(data, dict) or set(data) != {"photo", "box"}:
        raise ValueError(f"{where} must be an object with photo and box")
    photo, box = data["photo"], data["box"]
    if not isinstance(photo, str) or not _PHOTO_DIGEST.fullmatch(photo):
        raise ValueError(f"{where} photo must be a photo digest (32 hex digits)")
    if (
        not isinstance(box, list)
        or len(box) != 4
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in box)
        or not all(0 <= v <= MAX_BOX_PX for v in box)
        or box[0] >= box[2]
        or box[1] >= box[3]
    ):
        raise ValueError(f"{where} box must be [x1, y1, x2, y2]: pixels, x1 < x2 and y1 < y2")
    return EnrolledFace(photo, (box[0], box[1], box[2], box[3]))


def _faces(data: Any, n: int) -> tuple[EnrolledFace, ...]:
    if not isinstance(data, list) or not 1 <= len(data) <= MAX_TEMPLATES_PER_ENTRY:
        raise ValueError(f"entry {n} faces must be a list of 1 to {MAX_TEMPLATES_PER_ENTRY}")
    faces = tuple(_face(item, f"entry {n} face {k}") for k, item in enumerate(data))
    if len({f.photo for f in faces}) != len(faces):
        raise ValueError(f"entry {n} names the face of one photo twice")
    return faces


def _entry(data: Any, n: int, fmt: str) -> EntryDetails:
    if not isinstance(data, dict) or not {"id", "label", "added"} <= set(data):
        raise ValueError(f"entry {n} needs id, label and added")
    unknown = set(data) - _ENTRY_FIELDS[fmt]
    if unknown:
        raise ValueError(f"entry {n}: unknown field(s) {', '.join(sorted(unknown))}")
    entry_id, label = id_and_label(data, f"entry {n}")
    reason, legal_basis, case_ref = (
        _text(data.get(name), f"entry {n} {name}", MAX_TEXT) for name in TEXT_FIELDS
    )
    return EntryDetails(
        entry_id,
        label,
        str(_time(data["added"], f"entry {n} added", required=True)),
        _time(data.get("expires"), f"entry {n} expires", required=False),
        reason,
        legal_basis,
        case_ref,
        _faces(data["faces"], n) if "faces" in data else (),
    )


def _bundle_ref(data: Any) -> BundleRef:
    if (
        not isinstance(data, dict)
        or set(data) != {"kind", "manifest_sha256"}
        or data["kind"] not in ("full", "delta")
        or not isinstance(data["manifest_sha256"], str)
        or not _SHA256.fullmatch(data["manifest_sha256"])
    ):
        raise ValueError("bundles must be objects with kind (full, delta) and manifest_sha256")
    return BundleRef(data["kind"], data["manifest_sha256"])


def parse_details(signed: bytes) -> ListDetails:
    """The signed document; any problem is a ``ValueError`` naming it."""
    doc = load_json(signed)
    if not isinstance(doc, dict) or doc.get("format") not in DETAILS_FORMATS:
        raise ValueError(f"the signed document is not {' or '.join(DETAILS_FORMATS)}")
    fmt = str(doc["format"])
    if set(doc) != _DOC_FIELDS:
        raise ValueError(f"the document must hold exactly {', '.join(sorted(_DOC_FIELDS))}")
    list_id, version = doc["list_id"], doc["version"]
    if not isinstance(list_id, str) or not re.fullmatch(TOPIC_ID_PATTERN, list_id):
        raise ValueError("list_id is not a list id")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ValueError("version must be an integer >= 1")
    if not isinstance(doc["signing_key_id"], str):
        raise ValueError("signing_key_id must be a string")
    if not isinstance(doc["bundles"], list) or not doc["bundles"]:
        raise ValueError("bundles must be a non-empty list")
    if not isinstance(doc["entries"], list):
        raise ValueError("entries must be a list")
    entries = tuple(_entry(item, n, fmt) for n, item in enumerate(doc["entries"]))
    ids = [e.id for e in entries]
    if ids != sorted(set(ids)):
        raise ValueError("entry ids must be unique and ascending")
    if len({e.label for e in entries}) != len(entries):
        raise ValueError("labels must be unique")
    return ListDetails(
        list_id=list_id,
        version=version,
        created=str(_time(doc["created"], "created", required=True)),
        signing_key_id=doc["signing_key_id"],
        bundles=tuple(_bundle_ref(b) for b in doc["bundles"]),
        entries=entries,
        format=fmt,
    )
