"""The dispatch details file: why each person is on the list, kept out of the device bundle.

A device needs an entry's id, label, templates and expiry to match; only dispatch shows why the
person is on the list. ``edge watchlist build`` therefore writes the entries CSV's texts
(reason, legal basis, case reference) not into the bundle but into a file beside it, outside
its folder (default ``<bundle>.dispatch.json``), signed with the same hub key::

    {"format": "edge-watchlist-details/2", "signature": "<base64>", "signed": "<document>"}

``signed`` is the canonical JSON document as a string, so the Ed25519 signature covers its
exact UTF-8 bytes (as ``manifest.sig`` covers ``manifest.json``). The document says which list
and version it describes and names the sha256 of the manifest of every bundle the build wrote
(a delta and its full twin describe the same list), so dispatch refuses details that belong to
another bundle; its own ``format`` keeps it from ever passing for a manifest, and the reverse.
Its entries cover the whole list (id, label, added, expires, reason, legal_basis, case_ref).
Since format 2 an entry also says which face of each photo was enrolled (``faces``: the photo's
digest and the face's box in its pixels), so dispatch can show that face and not only a photo
that may show several people; format 1 files (no ``faces``) are still read. See
docs/watchlist.md.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import errno
import logging
import os
import re
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from edge.clock import format_time, parse_time
from edge.config.base import TOPIC_ID_PATTERN
from edge.errors import BundleError, EdgeError, WatchlistError
from edge.system.inputs import load_json
from edge.watchlist import keys as keyring
from edge.watchlist.bundle import VerifiedBundle, fsync_path
from edge.watchlist.entries import (
    MAX_TEXT,
    TEXT_FIELDS,
    Entry,
    ListContent,
    canonical_json,
    id_and_label,
)
from edge.watchlist.index import MAX_TEMPLATES_PER_ENTRY
from edge.watchlist.writer import EntryFields, FaceBox

log = logging.getLogger(__name__)
DETAILS_FORMAT_1 = "edge-watchlist-details/1"
DETAILS_FORMAT = "edge-watchlist-details/2"  # what builds write: format 1 and entries' faces
DETAILS_FORMATS = (DETAILS_FORMAT_1, DETAILS_FORMAT)
DETAILS_SUFFIX = ".dispatch.json"
MAX_DETAILS_BYTES = 1 << 28
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


def details_path(bundle: Path) -> Path:
    """Where a bundle's details file sits by default: ``<bundle folder>.dispatch.json``."""
    folder = Path(os.path.abspath(bundle))
    return folder.with_name(folder.name + DETAILS_SUFFIX)


def check_details_out(path: Path, bundles: Sequence[Path]) -> None:
    """Refuse, before anything is built, a details path that exists or lies in a bundle."""
    if path.exists() or path.is_symlink():
        raise WatchlistError(f"{path} already exists: choose a new path for the dispatch details")
    target = Path(os.path.abspath(path))
    for bundle in bundles:
        folder = Path(os.path.abspath(bundle))
        if target == folder or folder in target.parents:
            raise WatchlistError(
                f"dispatch details {path} must lie outside the bundle folder {bundle}"
            )


def list_details(
    content: ListContent,
    fields: Mapping[str, EntryFields],
    bundles: Sequence[VerifiedBundle],
    private_key: Ed25519PrivateKey,
    faces: Mapping[str, Mapping[str, FaceBox]] | None = None,
) -> ListDetails:
    """The details of every entry of ``content``, for the bundles one build wrote.

    ``faces``: by label, the enrolled face's box in each photo (by digest) the build knows of;
    an entry's photos without one (a template reused from a base that recorded none) have none.
    """
    faces = faces or {}
    if not bundles:
        raise WatchlistError("dispatch details need the bundle they describe")
    first = bundles[0].manifest
    for b in bundles:
        m = b.manifest
        if (m.list_id, m.version, m.entries_sha256) != (
            first.list_id,
            first.version,
            first.entries_sha256,
        ):
            raise WatchlistError("dispatch details cover bundles of one list version only")
    entries = []
    for entry in content.entries:
        f = fields.get(entry.label, EntryFields())
        boxes = faces.get(entry.label, {})
        entries.append(
            EntryDetails(
                entry.id,
                entry.label,
                entry.added,
                entry.expires,
                f.reason,
                f.legal_basis,
                f.case_ref,
                tuple(
                    EnrolledFace(t.photo, boxes[t.photo])
                    for t in entry.templates
                    if t.photo in boxes
                ),
            )
        )
    return ListDetails(
        list_id=first.list_id,
        version=first.version,
        created=first.created,
        signing_key_id=keyring.key_id(private_key.public_key()),
        bundles=tuple(BundleRef(b.manifest.kind, b.manifest_sha256) for b in bundles),
        entries=tuple(entries),
    )


def base_faces(base: VerifiedBundle, public_key: Ed25519PublicKey) -> dict[str, dict[str, FaceBox]]:
    """The enrolled faces recorded beside a base bundle, by label and photo digest: a delta
    reuses the base's templates without looking at their photos again, so it carries their
    faces over. Empty when the base has no readable details file of its own (older builds)."""
    path = details_path(base.path)
    if not path.is_file():
        return {}
    try:
        details = read_details(path, public_key, base)
    except BundleError as exc:
        log.warning("%s: the enrolled faces of reused photos are not carried over", exc)
        return {}
    return {e.label: {f.photo: f.box for f in e.faces} for e in details.entries}


def details_bytes(details: ListDetails, private_key: Ed25519PrivateKey) -> bytes:
    """The signed file: the canonical document as a string, and its signature."""
    signed = canonical_json(details.to_json())
    signature = keyring.sign(private_key, signed)
    return canonical_json(
        {
            "format": details.format,
            "signed": signed.decode("utf-8"),
            "signature": base64.b64encode(signature).decode("ascii"),
        }
    )


def write_details(path: Path, details: ListDetails, private_key: Ed25519PrivateKey) -> None:
    """Write the signed details file at ``path`` (never over an existing file), fsync'd."""
    data = details_bytes(details, private_key)
    parent = path.parent
    tmp: str | None = None
    try:
        parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=parent)  # mode 0600
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        _place(tmp, path)
        fsync_path(parent)
    except FileExistsError as exc:
        raise WatchlistError(
            f"{path} already exists: choose a new path for the dispatch details"
        ) from exc
    except OSError as exc:
        detail = exc.strerror or exc
        raise WatchlistError(f"cannot write dispatch details {path}: {detail}") from exc
    finally:
        if tmp is not None:  # the staging name (gone after a rename)
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def _place(tmp: str, path: Path) -> None:
    """Move the finished file into place, whole, and never over an existing file."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP):
            raise
        if path.exists():  # a file system without hard links (vfat): check, then rename
            raise FileExistsError(str(path)) from exc
        os.rename(tmp, path)


# --- reading ------------------------------------------------------------------------------------


def _refuse(path: Path, detail: str) -> BundleError:
    return BundleError("details", f"dispatch details {path}: {detail}")


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


def _envelope(raw: bytes) -> tuple[bytes, bytes, str]:
    """The signed bytes, the signature and the format from the file's envelope."""
    doc = load_json(raw)
    if not isinstance(doc, dict) or doc.get("format") not in DETAILS_FORMATS:
        raise ValueError(f"not a {' or '.join(DETAILS_FORMATS)} file")
    if set(doc) != {"format", "signed", "signature"}:
        raise ValueError("expected exactly format, signed and signature")
    if not isinstance(doc["signed"], str) or not isinstance(doc["signature"], str):
        raise ValueError("signed and signature must be strings")
    try:
        signature = base64.b64decode(doc["signature"], validate=True)
    except binascii.Error as exc:
        raise ValueError("signature is not base64") from exc
    return doc["signed"].encode("utf-8"), signature, str(doc["format"])


def read_details(path: Path, public_key: Ed25519PublicKey, bundle: VerifiedBundle) -> ListDetails:
    """Verify a details file (signature, format) and that it describes ``bundle``.

    Every refusal is a :class:`BundleError` of check ``details``.
    """
    try:
        with path.open("rb") as fh:
            raw = fh.read(MAX_DETAILS_BYTES + 1)
    except FileNotFoundError as exc:
        raise _refuse(path, "no such file") from exc
    except OSError as exc:
        raise _refuse(path, f"cannot read it: {exc.strerror or exc}") from exc
    if len(raw) > MAX_DETAILS_BYTES:
        raise _refuse(path, f"larger than {MAX_DETAILS_BYTES} bytes")
    try:
        signed, signature, envelope_format = _envelope(raw)
    except (UnicodeDecodeError, ValueError) as exc:  # JSONDecodeError is a ValueError
        raise _refuse(path, str(exc)) from exc
    trusted = keyring.key_id(public_key)
    try:
        if len(signature) != keyring.SIGNATURE_BYTES:
            raise InvalidSignature
        public_key.verify(signature, signed)
    except InvalidSignature as exc:
        signer = keyring.signer_hint(signed)
        if signer is not None and signer != trusted:
            detail = f"signed by key {signer}, but the trusted key is {trusted}"
        else:
            detail = f"the signature does not match its contents under trusted key {trusted}"
        raise _refuse(path, detail) from exc
    try:
        details = parse_details(signed)
    except (UnicodeDecodeError, ValueError, EdgeError) as exc:
        raise _refuse(path, str(exc)) from exc
    if details.format != envelope_format:
        raise _refuse(path, f"the file says {envelope_format}, its document {details.format}")
    m = bundle.manifest
    named = {b.manifest_sha256 for b in details.bundles}
    if bundle.manifest_sha256 not in named:
        raise _refuse(
            path,
            f"they belong to list {details.list_id} version {details.version} (bundle "
            f"{sorted(named)[0][:12]}...), not to {bundle.path} (list {m.list_id} version "
            f"{m.version}, bundle {bundle.manifest_sha256[:12]}...)",
        )
    if (details.list_id, details.version) != (m.list_id, m.version):
        raise _refuse(path, f"they name list {details.list_id} v{details.version}")
    return details
