"""Enrollment: photo folders and entries CSV in, templates and a per-photo report out."""

from __future__ import annotations

from pathlib import Path

import pytest
from watchlist_helpers import (
    GOOD,
    LOW_QUALITY,
    NO_FACE,
    NOW,
    TWO_FACES,
    FakeAnalyzer,
    write_photo,
)

from edge.errors import EnrollmentError
from edge.pipeline.images import decode_image
from edge.watchlist.enroll import enroll, pixel_box, read_entries_csv, scan_photos
from edge.watchlist.writer import EntryFields, assemble


def _photos(root: Path) -> Path:
    write_photo(root / "Alice" / "a1.png", GOOD, 1, 1)
    write_photo(root / "Alice" / "a2.png", GOOD, 1, 2)
    write_photo(root / "Alice" / "a3.png", NO_FACE, 1, 3)
    write_photo(root / "Bob" / "b1.png", TWO_FACES, 2, 1)
    write_photo(root / "Bob" / "b2.png", GOOD, 2, 2)
    write_photo(root / "Carol" / "c1.png", LOW_QUALITY, 3, 1)
    (root / "Bob" / "notes.txt").write_text("not a photo")
    (root / "Bob" / "broken.jpg").write_bytes(b"\xff\xd8garbage")
    return root


def test_each_bad_photo_is_rejected_with_a_reason_and_the_build_goes_on(tmp_path: Path) -> None:
    people = scan_photos(_photos(tmp_path / "photos"))
    assert sorted(people) == ["Alice", "Bob", "Carol"]
    specs, report = enroll(people, FakeAnalyzer(), "i8", decode_image)
    assert [s.label for s in specs] == ["Alice", "Bob"]
    assert [len(s.templates) for s in specs] == [2, 1]  # several photos -> several templates
    reasons = {Path(p.path).name: p.reason for p in report.rejected}
    assert reasons["a3.png"] == "no face found"
    assert reasons["b1.png"] == "2 faces found, exactly one is needed"
    assert reasons["c1.png"] is not None and "below the floor" in reasons["c1.png"]
    assert reasons["broken.jpg"] is not None and reasons["broken.jpg"].startswith("unreadable")
    assert "notes.txt" not in reasons  # not an image file: not a photo at all
    assert report.dropped == {"Carol": "no usable photo"}
    assert report.accepted == 3
    doc = report.to_json()
    assert doc["photos"] == 7 and len(doc["rejected"]) == 4


def test_the_picker_chooses_among_several_faces_and_the_report_says_which(
    tmp_path: Path,
) -> None:
    from edge.pipeline.pick import pick_face

    people = scan_photos(_photos(tmp_path / "photos"))
    specs, report = enroll(
        people, FakeAnalyzer(), "i8", decode_image, pick=lambda f, i: pick_face(f, i, "centre")
    )
    assert [len(s.templates) for s in specs] == [2, 2]  # Bob's two-face photo is enrolled
    (picked,) = report.picked
    assert Path(picked.path).name == "b1.png" and picked.picked == "nearest the centre of 2 faces"
    assert report.to_json()["picked"] == [picked.to_json()]
    assert report.without_photo == ["Carol"]


def test_known_photos_are_not_embedded_again(tmp_path: Path) -> None:
    people = scan_photos(_photos(tmp_path / "photos"))
    first, _ = enroll(people, FakeAnalyzer(), "i8", decode_image)
    base, next_id = assemble(first, "i8", 192, NOW)
    known = {e.label: frozenset(t.photo for t in e.templates) for e in base.entries}
    analyzer = FakeAnalyzer()
    again, report = enroll(people, analyzer, "i8", decode_image, known_photos=known)
    assert analyzer.calls == 7 - 3 - 1  # the three accepted photos are reused; txt skipped
    assert sum(p.reused for p in report.photos) == 3
    content, _ = assemble(again, "i8", 192, NOW, base=base, base_next_entry_id=next_id)
    assert content.templates_digest() == base.templates_digest()
    assert content.entries_bytes() == base.entries_bytes()


def test_each_template_remembers_which_face_it_was_made_of(tmp_path: Path) -> None:
    import numpy as np

    people = scan_photos(_photos(tmp_path / "photos"))
    first, _ = enroll(people, FakeAnalyzer(), "i8", decode_image)
    assert [t.box for s in first for t in s.templates] == [(0, 0, 10, 10)] * 3
    base, _ = assemble(first, "i8", 192, NOW)
    known = {e.label: frozenset(t.photo for t in e.templates) for e in base.entries}
    again, _ = enroll(people, FakeAnalyzer(), "i8", decode_image, known_photos=known)
    assert [t.box for s in again for t in s.templates] == [None] * 3  # reused: not looked at
    # In whole pixels, inside the photo, never empty (for the dispatch details file).
    image = np.zeros((20, 30, 3), np.uint8)
    assert pixel_box((-3.4, 2.6, 40.0, 19.7), image) == (0, 3, 30, 20)
    assert pixel_box((29.8, 5.0, 29.9, 5.2), image) == (29, 5, 30, 6)


def test_empty_photo_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "photos").mkdir()
    with pytest.raises(EnrollmentError, match="is empty"):
        scan_photos(tmp_path / "photos")
    with pytest.raises(EnrollmentError, match="does not exist"):
        scan_photos(tmp_path / "nowhere")


def test_person_folder_without_images_is_refused(tmp_path: Path) -> None:
    root = _photos(tmp_path / "photos")
    (root / "Dave").mkdir()
    (root / "Dave" / "readme.txt").write_text("x")
    with pytest.raises(EnrollmentError, match="Dave holds no image"):
        scan_photos(root)


def _csv(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "entries.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_entries_csv_adds_fields(tmp_path: Path) -> None:
    path = _csv(
        tmp_path,
        "label,reason,legal_basis,case_ref,expires\n"
        'Alice,"theft, repeated",Art. 6(1)(e),CASE-1,2026-01-01\n'
        "Bob,,,,\n",
    )
    fields = read_entries_csv(path, ["Alice", "Bob"])
    assert fields["Alice"] == EntryFields(
        reason="theft, repeated",
        legal_basis="Art. 6(1)(e)",
        case_ref="CASE-1",
        expires="2026-01-01T00:00:00Z",
    )
    assert fields["Bob"] == EntryFields()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "is empty"),
        ("name,reason\nAlice,x\n", "header must be"),
        ("label,reason,colour\nAlice,x,red\n", "unknown: colour"),
        ("label,label\nAlice,Alice\n", "each once"),
        ("label,reason\nAlice,x,extra\n", "line 2: 3 fields"),
        ("label,reason\nZed,x\n", "no photo folder for label 'Zed'"),
        ("label,reason\nAlice,x\nAlice,y\n", "line 3: label 'Alice' repeated"),
        ("label,expires\nAlice,next tuesday\n", "line 2"),
        ("label,reason\n,x\n", "label is empty"),
        ('label,reason\nAlice,"unterminated\n', "line"),
    ],
)
def test_malformed_entries_csv_is_refused(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(EnrollmentError, match=message) as err:
        read_entries_csv(_csv(tmp_path, text), ["Alice", "Bob"])
    assert "\n" not in str(err.value)


def test_entries_csv_not_utf8_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "e.csv"
    path.write_bytes(b"label\n\xff\xfe\n")
    with pytest.raises(EnrollmentError, match="UTF-8"):
        read_entries_csv(path, ["Alice"])
