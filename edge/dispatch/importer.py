"""``edge dispatch import-list``: entry details and reference thumbnails, for dispatch only.

Devices get the signed bundle (templates and the entries table: id, label, dates) and never a
photo nor why a person is on the list. Dispatch needs both to show a person: the reference
photos beside the probe, and the entry's reason, case reference and legal basis. The import
verifies the bundle's signature; verifies the signed details file the build wrote beside it
(:mod:`edge.watchlist.details`, default ``<bundle>.dispatch.json``), that it names this bundle
and describes exactly its entries, and takes the details from it. A bundle built before the
details moved out of it, with no details file, still carries them itself: they are taken from
the bundle then, and the report says so. From the hub's photo folder (one sub-folder per person,
as for ``edge watchlist build``) it takes each template's photo by its sha256 (the bundle names
every template's photo digest) and keeps a small JPEG thumbnail of it in the dispatch database,
with the face that was enrolled from it: a crop of that face (with the margin the devices' probe
crops have) and its box in the thumbnail, from the details file (format 2). A list whose details
do not say which face was enrolled still imports: its photos are kept without a face crop, with
the reason, which the alert page shows.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from edge.dispatch.store import Store
from edge.errors import DispatchError, EdgeError
from edge.pipeline.frames import face_crop_jpeg
from edge.pipeline.images import decode_image
from edge.types import Image
from edge.watchlist.bundle import VerifiedBundle, read_bundle
from edge.watchlist.details import details_path, read_details
from edge.watchlist.details_document import DETAILS_FORMAT_1, EntryDetails
from edge.watchlist.enroll import photo_digest, scan_photos
from edge.watchlist.entries import Entry, parse_entries
from edge.watchlist.manifest import ENTRIES
from edge.watchlist.writer import FaceBox

log = logging.getLogger(__name__)
JPEG_QUALITY = 85
BUNDLE_DETAILS = "bundle"  # ImportReport.details: taken from an old bundle's own entries table
# Why a reference photo has no enrolled face crop (shown on the alert page).
NO_FACE_OLD_BUNDLE = (
    "the list has no details file (built before edge recorded which face was enrolled): "
    "rebuild it with `edge watchlist build` to show the enrolled face"
)
NO_FACE_OLD_DETAILS = (
    f"the list's details file ({DETAILS_FORMAT_1}) does not say which face was enrolled: "
    "rebuild the list with `edge watchlist build` to show it"
)
NO_FACE_CARRIED = (
    "the list's details do not say which face of this photo was enrolled (its template was "
    "carried over from a list version that did not record it)"
)


@dataclass
class ImportReport:
    list_id: str
    version: int
    entries: int = 0
    photos: int = 0
    faces: int = 0  # reference photos with their enrolled face
    without_face: list[str] = field(default_factory=list)  # "label: why not", one per photo
    missing: list[str] = field(default_factory=list)  # "label: photo digest" not found
    details: str = ""  # the details file the entry details came from, or BUNDLE_DETAILS
    with_details: int = 0  # entries with a reason, legal basis or case reference

    @property
    def details_from_bundle(self) -> bool:
        return self.details == BUNDLE_DETAILS

    def as_dict(self) -> dict[str, object]:
        return {
            "list_id": self.list_id,
            "version": self.version,
            "entries": self.entries,
            "photos": self.photos,
            "enrolled_faces": self.faces,
            "without_enrolled_face": self.without_face,
            "missing_photos": self.missing,
            "details": self.details,
            "entries_with_details": self.with_details,
        }


def thumbnail(image: Image, max_px: int) -> tuple[bytes, float, tuple[int, int]]:
    """A JPEG at most ``max_px`` on its longer side (never enlarged), the scale it was made
    at, and its (width, height)."""
    height, width = image.shape[:2]
    scale = min(1.0, max_px / max(height, width))
    if scale < 1.0:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        image = np.asarray(cv2.resize(image, size, interpolation=cv2.INTER_AREA), np.uint8)
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise DispatchError("cannot encode a JPEG thumbnail")
    return bytes(encoded.tobytes()), scale, (image.shape[1], image.shape[0])


def reference_photo(
    data: bytes, name: str, box: FaceBox | None, no_face: str, max_px: int
) -> dict[str, object]:
    """A photo's row: its thumbnail and, when ``box`` says which face was enrolled, that face
    cropped from the full photo and its box in the thumbnail; else ``no_face`` says why not."""
    image = decode_image(data, name)
    jpeg, scale, (width, height) = thumbnail(image, max_px)
    row: dict[str, object] = {"jpeg": jpeg, "width": width, "height": height}
    face = None if box is None else face_crop_jpeg(image, box, max_px)
    if box is None or face is None:
        if box is not None:
            no_face = f"the enrolled face's box {list(box)} is not inside the photo"
        return {**row, "face_jpeg": None, "face_box": None, "face_note": no_face}
    in_thumbnail = [round(v * scale) for v in box]
    return {**row, "face_jpeg": face, "face_box": json.dumps(in_thumbnail), "face_note": None}


def import_list(
    store: Store,
    bundle: Path,
    public_key: Ed25519PublicKey,
    *,
    photos: Path | None,
    thumbnail_px: int,
    by: str,
    details: Path | None = None,
) -> ImportReport:
    """Import a full bundle's entries; ``details`` None: ``<bundle>.dispatch.json`` if it exists,
    else (an old bundle) the bundle's own fields."""
    verified = read_bundle(bundle, public_key)
    manifest = verified.manifest
    if manifest.kind != "full":
        raise DispatchError(
            f"{bundle} is a delta: import the full bundle of version {manifest.version}"
        )
    try:
        entries = parse_entries((bundle / ENTRIES).read_bytes(), ENTRIES)
    except OSError as exc:
        raise DispatchError(f"cannot read {bundle / ENTRIES}: {exc.strerror}") from exc
    by_id, source, details_format = _details(verified, entries, public_key, details)
    people = scan_photos(photos) if photos is not None else {}
    report = ImportReport(manifest.list_id, manifest.version, details=source)
    entry_rows: list[dict[str, object]] = []
    photo_rows: list[dict[str, object]] = []
    no_face = _no_face(source, details_format)
    for entry in entries:
        about = by_id[entry.id]
        wanted = {t.photo for t in entry.templates}
        found: dict[str, dict[str, object]] = {}
        for path in people.get(entry.label, []):
            try:
                data = path.read_bytes()
            except OSError as exc:
                log.warning("cannot read %s: %s", path, exc.strerror)
                continue
            digest = photo_digest(data)
            if digest in wanted and digest not in found:
                box = about.face_of(digest)
                try:
                    found[digest] = reference_photo(data, str(path), box, no_face, thumbnail_px)
                except EdgeError as exc:
                    log.warning("%s: %s", path, exc)
        n = 0
        for template in entry.templates:
            row = found.pop(template.photo, None)
            if row is None:
                if photos is not None:
                    report.missing.append(f"{entry.label}: {template.photo}")
                continue
            photo_rows.append({**row, "entry_id": str(entry.id), "n": n, "photo": template.photo})
            if row["face_jpeg"] is None:
                report.without_face.append(f"{entry.label}: {row['face_note']}")
            else:
                report.faces += 1
            n += 1
        entry_rows.append(
            {
                "entry_id": str(entry.id),
                "label": entry.label,
                "added": entry.added,
                "expires": entry.expires,
                "reason": about.reason,
                "legal_basis": about.legal_basis,
                "case_ref": about.case_ref,
                "photos": n,
            }
        )
        report.photos += n
        report.with_details += any((about.reason, about.legal_basis, about.case_ref))
    report.entries = len(entry_rows)
    store.import_list(manifest.to_json(), entry_rows, photo_rows, by)
    return report


def _details(
    bundle: VerifiedBundle,
    entries: tuple[Entry, ...],
    public_key: Ed25519PublicKey,
    given: Path | None,
) -> tuple[dict[int, EntryDetails], str, str | None]:
    """The entry details by id, where they came from (a file, or ``BUNDLE_DETAILS``), and the
    file's format."""
    path = given if given is not None else details_path(bundle.path)
    if given is None and not path.exists() and not path.is_symlink():
        return {e.id: EntryDetails.of_entry(e) for e in entries}, BUNDLE_DETAILS, None
    details = read_details(path, public_key, bundle)
    return details.for_entries(entries, path), str(path), details.format


def _no_face(source: str, details_format: str | None) -> str:
    """Why a photo of this import has no enrolled face box."""
    if source == BUNDLE_DETAILS:
        return NO_FACE_OLD_BUNDLE
    if details_format == DETAILS_FORMAT_1:
        return NO_FACE_OLD_DETAILS
    return NO_FACE_CARRIED
