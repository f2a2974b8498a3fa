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
every template's photo digest) and keeps a small JPEG thumbnail of it in the dispatch database.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from edge.dispatch.store import Store
from edge.errors import DispatchError, EdgeError
from edge.watchlist.bundle import ENTRIES, VerifiedBundle, read_bundle
from edge.watchlist.details import EntryDetails, details_path, read_details
from edge.watchlist.enroll import photo_digest, scan_photos
from edge.watchlist.entries import Entry, parse_entries

log = logging.getLogger(__name__)
JPEG_QUALITY = 85
BUNDLE_DETAILS = "bundle"  # ImportReport.details: taken from an old bundle's own entries table


@dataclass
class ImportReport:
    list_id: str
    version: int
    entries: int = 0
    photos: int = 0
    missing: list[str] = field(default_factory=list)  # "label: photo digest" not found
    details: str = ""  # the details file the entry details came from, or BUNDLE_DETAILS
    with_details: int = 0  # entries with a reason, legal basis or case reference

    @property
    def details_from_bundle(self) -> bool:
        return self.details == BUNDLE_DETAILS

    def as_dict(self) -> dict[str, Any]:
        return {
            "list_id": self.list_id,
            "version": self.version,
            "entries": self.entries,
            "photos": self.photos,
            "missing_photos": self.missing,
            "details": self.details,
            "entries_with_details": self.with_details,
        }


def thumbnail(data: bytes, max_px: int) -> bytes:
    """A JPEG at most ``max_px`` on its longer side (never enlarged)."""
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise DispatchError("not a readable image")
    height, width = image.shape[:2]
    scale = min(1.0, max_px / max(height, width))
    if scale < 1.0:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise DispatchError("cannot encode a JPEG thumbnail")
    return bytes(encoded.tobytes())


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
    by_id, source = _details(verified, entries, public_key, details)
    people = scan_photos(photos) if photos is not None else {}
    report = ImportReport(manifest.list_id, manifest.version, details=source)
    entry_rows: list[dict[str, Any]] = []
    photo_rows: list[dict[str, Any]] = []
    for entry in entries:
        wanted = {t.photo for t in entry.templates}
        found: dict[str, bytes] = {}
        for path in people.get(entry.label, []):
            try:
                data = path.read_bytes()
            except OSError as exc:
                log.warning("cannot read %s: %s", path, exc.strerror)
                continue
            digest = photo_digest(data)
            if digest in wanted and digest not in found:
                try:
                    found[digest] = thumbnail(data, thumbnail_px)
                except EdgeError as exc:
                    log.warning("%s: %s", path, exc)
        n = 0
        for template in entry.templates:
            jpeg = found.get(template.photo)
            if jpeg is None:
                if photos is not None:
                    report.missing.append(f"{entry.label}: {template.photo}")
                continue
            photo_rows.append(
                {"entry_id": str(entry.id), "n": n, "photo": template.photo, "jpeg": jpeg}
            )
            found.pop(template.photo)
            n += 1
        about = by_id[entry.id]
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
) -> tuple[dict[int, EntryDetails], str]:
    """The entry details by id, and where they came from (a file, or ``BUNDLE_DETAILS``)."""
    path = given if given is not None else details_path(bundle.path)
    if given is None and not path.exists() and not path.is_symlink():
        return {e.id: EntryDetails.of_entry(e) for e in entries}, BUNDLE_DETAILS
    details = read_details(path, public_key, bundle)
    return details.for_entries(entries, path), str(path)
