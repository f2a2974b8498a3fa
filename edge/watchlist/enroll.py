"""Enrollment: a folder of photos (one sub-folder per person) -> templates, with a report.

Every photo is read, detected, quality-checked and embedded by the production pipeline. A photo
is rejected, with its reason in the report, when it cannot be read, shows no face, shows several
faces of which the ``pick`` function picks none (by default: exactly one face is needed), or its
face is below the quality floor; the build goes on without it. Which face was picked of several,
and why, is in the report. A person whose every photo was rejected is left off the list (also
reported: :attr:`EnrollReport.without_photo`). Several accepted photos of one person become
several templates of one entry. Each template keeps the box of the face it was made of, for the
dispatch details file (:mod:`edge.watchlist.details`): dispatch shows that face, not only a photo
that may show several people.

Refused outright (one-line error, nothing written): a photo folder that is missing or holds no
person folder, a person folder without any image file, an entries CSV that is malformed or
names a person without a folder.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from edge.clock import format_time, parse_time
from edge.errors import EdgeError, EnrollmentError, ImageError
from edge.system.inputs import MAX_IMAGE_BYTES, read_bounded
from edge.types import Box, Face, Image
from edge.watchlist.entries import MAX_TEXT
from edge.watchlist.index import Dtype, quantize
from edge.watchlist.writer import EntryFields, EntrySpec, FaceBox, TemplateSpec

NO_USABLE_PHOTO = "no usable photo"
# Picks the person's face of those found in a photo: (face, why this one) or (None, why none).
# The wiring passes edge.pipeline.pick.pick_face with the --pick mode.
Picker = Callable[[Sequence[Face], Image], tuple[Face | None, str | None]]
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
CSV_COLUMNS = ("label", "reason", "legal_basis", "case_ref", "expires")
LABEL_MAX = 128


class Analyzer(Protocol):
    """What enrollment needs of :class:`edge.pipeline.analyzer.FaceAnalyzer`."""

    @property
    def model_name(self) -> str: ...

    @property
    def model_sha256(self) -> str: ...

    def analyze(self, image: Image) -> list[Face]: ...


@dataclass(frozen=True)
class PhotoOutcome:
    label: str
    path: str
    accepted: bool
    reason: str | None = None
    quality: float | None = None
    reused: bool = False
    picked: str | None = None  # which face of several, and why

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"label": self.label, "path": self.path, "accepted": self.accepted}
        if self.reason is not None:
            out["reason"] = self.reason
        if self.quality is not None:
            out["quality"] = round(self.quality, 4)
        if self.reused:
            out["reused"] = True
        if self.picked is not None:
            out["picked"] = self.picked
        return out


@dataclass
class EnrollReport:
    photos: list[PhotoOutcome] = field(default_factory=list)
    dropped: dict[str, str] = field(default_factory=dict)  # label -> why the person is left off

    @property
    def accepted(self) -> int:
        return sum(p.accepted for p in self.photos)

    @property
    def rejected(self) -> list[PhotoOutcome]:
        return [p for p in self.photos if not p.accepted]

    @property
    def picked(self) -> list[PhotoOutcome]:
        """Accepted photos that showed several faces: which one was taken, and why."""
        return [p for p in self.photos if p.accepted and p.picked is not None]

    @property
    def without_photo(self) -> list[str]:
        """Labels left off the list because none of their photos was usable."""
        return sorted(label for label, why in self.dropped.items() if why == NO_USABLE_PHOTO)

    def to_json(self) -> dict[str, Any]:
        return {
            "photos": len(self.photos),
            "accepted": self.accepted,
            "rejected": [p.to_json() for p in self.rejected],
            "picked": [p.to_json() for p in self.picked],
            "dropped_entries": dict(sorted(self.dropped.items())),
        }


def photo_digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:32]


def scan_photos(photos_dir: Path) -> dict[str, list[Path]]:
    """``{label: [photo paths, sorted]}``; refuses an empty folder or an empty person folder."""
    if not photos_dir.is_dir():
        raise EnrollmentError(f"photo folder {photos_dir} does not exist or is not a folder")
    people: dict[str, list[Path]] = {}
    try:
        folders = sorted(
            p for p in photos_dir.iterdir() if p.is_dir() and not p.name.startswith(".")
        )
        for folder in folders:
            label = folder.name
            if len(label) > LABEL_MAX:
                raise EnrollmentError(f"folder name {label[:40]!r}... is longer than {LABEL_MAX}")
            photos = sorted(
                p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
            )
            if not photos:
                raise EnrollmentError(
                    f"person folder {folder} holds no image ({', '.join(sorted(IMAGE_SUFFIXES))})"
                )
            people[label] = photos
    except OSError as exc:
        raise EnrollmentError(f"cannot read {photos_dir}: {exc.strerror or exc}") from exc
    if not people:
        raise EnrollmentError(
            f"photo folder {photos_dir} is empty: expected one sub-folder of photos per person"
        )
    return people


def read_entries_csv(path: Path, labels: Iterable[str]) -> dict[str, EntryFields]:
    """Per-entry fields; header ``label`` plus any of reason, legal_basis, case_ref, expires."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise EnrollmentError(f"entries CSV {path} is not UTF-8 text") from exc
    except OSError as exc:
        raise EnrollmentError(f"cannot read entries CSV {path}: {exc.strerror or exc}") from exc
    known = set(labels)
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    out: dict[str, EntryFields] = {}
    try:
        header = next(reader, None)
        if header is None:
            raise EnrollmentError(f"entries CSV {path} is empty (a header row is required)")
        header = [h.strip() for h in header]
        unknown = [h for h in header if h not in CSV_COLUMNS]
        if "label" not in header or unknown or len(set(header)) != len(header):
            raise EnrollmentError(
                f"entries CSV {path} line 1: header must be 'label' and any of "
                f"{', '.join(CSV_COLUMNS[1:])}, each once"
                + (f" (unknown: {', '.join(unknown)})" if unknown else "")
            )
        for row in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                raise EnrollmentError(
                    f"entries CSV {path} line {line}: {len(row)} fields, header has {len(header)}"
                )
            values = {h: (cell.strip() or None) for h, cell in zip(header, row, strict=True)}
            label = values["label"]
            if label is None:
                raise EnrollmentError(f"entries CSV {path} line {line}: label is empty")
            if label not in known:
                raise EnrollmentError(
                    f"entries CSV {path} line {line}: no photo folder for label {label!r}"
                )
            if label in out:
                raise EnrollmentError(f"entries CSV {path} line {line}: label {label!r} repeated")
            for name in ("reason", "legal_basis", "case_ref"):
                value = values.get(name)
                if value is not None and (len(value) > MAX_TEXT or "\n" in value):
                    raise EnrollmentError(
                        f"entries CSV {path} line {line}: {name} must be one line of at most "
                        f"{MAX_TEXT} characters"
                    )
            expires = values.get("expires")
            if expires is not None:
                try:
                    expires = format_time(parse_time(expires, "expires"))
                except EdgeError as exc:
                    raise EnrollmentError(f"entries CSV {path} line {line}: {exc}") from exc
            out[label] = EntryFields(
                reason=values.get("reason"),
                legal_basis=values.get("legal_basis"),
                case_ref=values.get("case_ref"),
                expires=expires,
            )
    except csv.Error as exc:
        raise EnrollmentError(f"entries CSV {path} line {reader.line_num}: {exc}") from exc
    return out


def pixel_box(box: Box, image: Image) -> FaceBox:
    """A detected face's box in whole pixels, inside the image, never empty."""
    height, width = image.shape[:2]
    x1 = min(max(round(box[0]), 0), width - 1)
    y1 = min(max(round(box[1]), 0), height - 1)
    x2 = min(max(round(box[2]), x1 + 1), width)
    y2 = min(max(round(box[3]), y1 + 1), height)
    return x1, y1, x2, y2


def only_face(faces: Sequence[Face], image: Image) -> tuple[Face | None, str | None]:
    """The default :data:`Picker`: exactly one face, or none."""
    if not faces:
        return None, "no face found"
    if len(faces) > 1:
        return None, f"{len(faces)} faces found, exactly one is needed"
    return faces[0], None


def _judge(face: Face | None, note: str | None) -> tuple[str | None, Face | None]:
    """(reason, None) for a rejected photo, else (None, the face to enrol)."""
    if face is None:
        return note or "no face picked", None
    if face.embedding is None:
        return f"face quality {face.quality:.2f} is below the floor", None
    return None, face


def enroll(
    people: dict[str, list[Path]],
    analyzer: Analyzer,
    dtype: Dtype,
    decode: Callable[[bytes, str], Image],
    fields: dict[str, EntryFields] | None = None,
    known_photos: Mapping[str, frozenset[str]] | None = None,
    progress: Callable[[Iterable[Any]], Iterable[Any]] = lambda it: it,
    pick: Picker = only_face,
) -> tuple[list[EntrySpec], EnrollReport]:
    """Embed every photo. A photo whose digest is in ``known_photos[label]`` (the base list
    already holds it for that person) is not embedded again: its template is reused (see
    :func:`edge.watchlist.writer.assemble`). ``decode(data, name)`` turns a photo file's
    bytes into an image (:func:`edge.pipeline.images.decode_image`), raising an
    :class:`EdgeError` for anything that is not one. ``pick`` chooses the person's face among
    those found in a photo (:data:`Picker`; default: exactly one face)."""
    fields = fields or {}
    known_photos = known_photos or {}
    report = EnrollReport()
    specs: list[EntrySpec] = []
    items = [(label, path) for label, paths in sorted(people.items()) for path in paths]
    accepted: dict[str, list[TemplateSpec]] = {label: [] for label in people}
    seen: dict[str, set[str]] = {label: set() for label in people}
    for label, path in progress(items):
        try:
            data = read_bounded(path, MAX_IMAGE_BYTES, "photo", ImageError)
        except ImageError as exc:
            report.photos.append(PhotoOutcome(label, str(path), False, f"unreadable: {exc}"))
            continue
        digest = photo_digest(data)
        if digest in seen[label]:
            report.photos.append(
                PhotoOutcome(label, str(path), False, "duplicate of another photo")
            )
            continue
        if digest in known_photos.get(label, ()):
            seen[label].add(digest)
            accepted[label].append(TemplateSpec(digest, 0.0, None))
            report.photos.append(PhotoOutcome(label, str(path), True, reused=True))
            continue
        try:
            image = decode(data, str(path))
        except EdgeError as exc:
            report.photos.append(PhotoOutcome(label, str(path), False, f"unreadable: {exc}"))
            continue
        picked, note = pick(analyzer.analyze(image), image)
        reason, face = _judge(picked, note)
        if face is None or face.embedding is None:
            report.photos.append(PhotoOutcome(label, str(path), False, reason))
            continue
        seen[label].add(digest)
        accepted[label].append(
            TemplateSpec(
                digest,
                float(face.quality),
                quantize(face.embedding, dtype),
                pixel_box(face.box, image),
            )
        )
        report.photos.append(
            PhotoOutcome(label, str(path), True, quality=float(face.quality), picked=note)
        )
    for label in sorted(people):
        templates = accepted[label]
        if not templates:
            report.dropped[label] = NO_USABLE_PHOTO
            continue
        specs.append(EntrySpec(label, fields.get(label, EntryFields()), tuple(templates)))
    return specs, report
