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
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from edge.errors import BundleError, EdgeError, WatchlistError
from edge.system.inputs import load_json
from edge.watchlist import keys as keyring
from edge.watchlist.bundle import VerifiedBundle, fsync_path
from edge.watchlist.details_document import (
    DETAILS_FORMATS,
    BundleRef,
    EnrolledFace,
    EntryDetails,
    ListDetails,
    parse_details,
)
from edge.watchlist.entries import ListContent, canonical_json
from edge.watchlist.writer import EntryFields, FaceBox

log = logging.getLogger(__name__)
DETAILS_SUFFIX = ".dispatch.json"
MAX_DETAILS_BYTES = 1 << 28


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
