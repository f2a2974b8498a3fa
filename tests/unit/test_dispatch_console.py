"""What the alert page and the API give a dispatcher to act on (TestClient, SQLite): the scene
frame as the device sent it with the matched face's box, the enrolled face beside the whole
enrolment photo, late arrivals, test alerts, the person's label and where the place comes from.
The browser side (the box over the right pixels, local times) is test_dispatch_browser."""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import cv2
import pytest
from alerts_helpers import sample_alert
from dispatch_helpers import (
    JPEG,
    client_for,
    login,
    make_deps,
    scene_frame,
    sqlite_store,
    with_context,
)

from edge.alerts.model import Alert
from edge.dispatch import tables as t
from edge.dispatch.deps import Deps, duration_text
from edge.dispatch.received import MAX_ALERT_BYTES, received
from edge.errors import AlertError

BOX = (432, 149, 533, 251)  # Colin Powell's face in the scene frame


@pytest.fixture
def deps(tmp_path: Path) -> Deps:
    return make_deps(sqlite_store(tmp_path))


@pytest.fixture(scope="module")
def scene_jpeg() -> bytes:
    return bytes(cv2.imencode(".jpg", scene_frame())[1].tobytes())


def _store(deps: Deps, alert: Alert) -> str:
    deps.store.ingest([received(alert.encode())])
    return alert.alert_id


def _api(deps: Deps) -> tuple[Any, dict[str, str]]:
    token = deps.accounts.create_token("olga", by="test")
    return client_for(deps), {"Authorization": f"Bearer {token}"}


def test_the_scene_frame_is_kept_as_sent_and_its_box_drawn_over_it(
    deps: Deps, scene_jpeg: bytes
) -> None:
    alert_id = _store(deps, with_context(sample_alert(0, crop_jpeg=JPEG), scene_jpeg, BOX))
    with deps.store.tx("read") as conn:
        document = conn.execute(t.alerts.select()).mappings().one()["document"]
    assert "context" not in json.loads(document) and "crop" not in json.loads(document)
    client, headers = _api(deps)
    picture = client.get(f"/alerts/{alert_id}/context.jpg", headers=headers)
    assert picture.status_code == 200 and picture.headers["content-type"] == "image/jpeg"
    assert picture.content == scene_jpeg  # the device's bytes: no box drawn into them
    detail = client.get(f"/api/alerts/{alert_id}", headers=headers).json()
    assert detail["has_context"] and detail["crop_url"] == f"/alerts/{alert_id}/crop.jpg"
    assert detail["context"] == {
        "url": f"/alerts/{alert_id}/context.jpg",
        "width": 640,
        "height": 360,
        "box": list(BOX),
    }
    (listed,) = client.get("/api/alerts", headers=headers).json()
    assert listed["has_context"] and "context" not in listed
    spec = client.get("/openapi.json", headers=headers).json()["components"]["schemas"]
    assert {"context", "reference_photos", "crop_url"} <= set(spec["AlertDetail"]["properties"])
    assert {"late", "delay_s", "has_context"} <= set(spec["AlertOut"]["properties"])
    login(client, "olga")
    page = client.get(f"/alerts/{alert_id}").text
    svg = re.search(r'<svg class="framed" id="context" viewBox="0 0 640 360".*?</svg>', page, re.S)
    assert svg is not None and f'href="/alerts/{alert_id}/context.jpg"' in svg.group(0)
    x1, y1, x2, y2 = BOX
    assert f'<rect class="box" x="{x1}" y="{y1}" width="{x2 - x1}" height="{y2 - y1}">' in page
    assert "every other face was blurred on the device" in page


def test_an_alert_without_a_scene_frame_says_so(deps: Deps) -> None:
    alert_id = _store(deps, sample_alert(0))
    client, headers = _api(deps)
    assert client.get(f"/alerts/{alert_id}/context.jpg", headers=headers).status_code == 404
    assert client.get(f"/api/alerts/{alert_id}", headers=headers).json()["context"] is None
    login(client, "olga")
    page = client.get(f"/alerts/{alert_id}").text
    assert "no scene frame sent" in page and 'id="context"' not in page


def test_a_box_outside_its_frame_drops_the_frame_and_keeps_the_alert(
    deps: Deps, scene_jpeg: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    alert = with_context(sample_alert(0), scene_jpeg, (600, 300, 700, 400))
    with caplog.at_level(logging.WARNING, logger="edge.dispatch.received"):
        alert_id = _store(deps, alert)
    assert "is not inside its 640x360 frame: frame dropped" in caplog.text
    row = deps.store.get_alert(alert_id)
    assert not row["has_context"] and deps.store.context_jpeg(alert_id) is None


def test_a_context_frame_as_large_as_the_schema_allows_is_taken(scene_jpeg: bytes) -> None:
    padded = scene_jpeg + bytes(393_216 - len(scene_jpeg))  # 512 KiB of base64, the most
    alert = with_context(sample_alert(0, crop_jpeg=JPEG), padded, BOX)
    assert alert.context is not None and len(alert.context.data) == 524_288
    item = received(alert.encode())
    assert item.context is not None and item.context.jpeg == padded
    with pytest.raises(AlertError, match=f"over the {MAX_ALERT_BYTES}-byte limit"):
        received(b" " * (MAX_ALERT_BYTES + 1))


def test_late_arrivals_are_marked(deps: Deps) -> None:
    now = datetime.now(UTC)
    late = _store(deps, sample_alert(0, event_time=now - timedelta(minutes=15)))
    prompt = _store(deps, sample_alert(1, event_time=now))
    client, headers = _api(deps)
    listed = {a["alert_id"]: a for a in client.get("/api/alerts", headers=headers).json()}
    assert listed[late]["late"] and 899 < listed[late]["delay_s"] < 960
    assert not listed[prompt]["late"] and listed[prompt]["delay_s"] < 60
    login(client, "olga")
    rows = client.get("/").text
    late_row = re.search(rf'<tr data-alert="{late}".*?</tr>', rows, re.S)
    prompt_row = re.search(rf'<tr data-alert="{prompt}".*?</tr>', rows, re.S)
    assert late_row is not None and prompt_row is not None
    assert 'class="tag late"' in late_row.group(0) and "late 15 min" in late_row.group(0)
    assert "tag late" not in prompt_row.group(0)
    page = client.get(f"/alerts/{late}").text
    assert 'id="late-mark"' in page and "LATE: seen 15 min before it arrived" in page
    assert 'id="late-mark"' not in client.get(f"/alerts/{prompt}").text


def test_test_alerts_are_loud_and_real_ones_are_not(deps: Deps) -> None:
    test_id = _store(deps, sample_alert(0, test=True))
    real_id = _store(deps, sample_alert(1))
    client = client_for(deps)
    login(client, "olga")
    rows = client.get("/").text
    test_row = re.search(rf'<tr data-alert="{test_id}" class="[^"]*\btest\b.*?</tr>', rows, re.S)
    assert test_row is not None and ">TEST</span>" in test_row.group(0)
    assert re.search(rf'<tr data-alert="{real_id}" class="state-new">', rows)
    page = client.get(f"/alerts/{test_id}").text
    assert 'id="test-banner"' in page and "Not a real sighting" in page
    assert "<title>TEST: " in page
    assert 'id="test-banner"' not in client.get(f"/alerts/{real_id}").text


def test_the_page_names_the_person_says_where_a_place_comes_from_and_carries_utc(
    deps: Deps,
) -> None:
    alert = sample_alert(4)
    alert_id = _store(deps, alert)
    client = client_for(deps)
    login(client, "olga")
    page = client.get(f"/alerts/{alert_id}").text
    entry = re.search(r'<dd id="entry">(.*?)</dd>', page, re.S)
    assert entry is not None and "<strong>Person 4</strong>" in entry.group(1)
    assert "(entry id e4)" in entry.group(1)
    place = re.search(r'<dd id="place">(.*?)</dd>', page, re.S)
    assert place is not None and "<code>device.location</code>" in place.group(1)
    utc = alert.event_time.replace("T", " ").replace("Z", " UTC")
    assert f'<time class="local" datetime="{alert.event_time}" title="{utc}">' in page
    placed = _store(deps, sample_alert(5, location={"name": "North gate"}))
    assert "device.location" not in client.get(f"/alerts/{placed}").text


def _import_photos(deps: Deps) -> None:
    entry = {
        "entry_id": "e0",
        "label": "Person 0",
        "added": "2025-06-01T12:00:00Z",
        "expires": None,
        "reason": "wanted",
        "legal_basis": None,
        "case_ref": None,
        "photos": 2,
    }
    common = {"entry_id": "e0", "jpeg": JPEG, "width": 240, "height": 129}
    photos = [
        {
            **common,
            "n": 0,
            "photo": "a" * 32,
            "face_jpeg": JPEG + b"face",
            "face_box": "[155, 46, 198, 89]",
            "face_note": None,
        },
        {
            **common,
            "n": 1,
            "photo": "b" * 32,
            "face_jpeg": None,
            "face_box": None,
            "face_note": "not recorded here",
        },
    ]
    manifest = {"list_id": "wl-main", "version": 7, "valid_until": "2099-01-01T00:00:00Z"}
    deps.store.import_list(manifest, [entry], photos, "test")


def test_the_enrolled_face_is_shown_beside_the_photo_it_came_from(deps: Deps) -> None:
    _import_photos(deps)
    alert_id = _store(deps, sample_alert(0, crop_jpeg=JPEG))
    client, headers = _api(deps)
    face = client.get("/entries/wl-main/e0/0/face.jpg", headers=headers)
    assert face.status_code == 200 and face.content == JPEG + b"face"
    assert client.get("/entries/wl-main/e0/1/face.jpg", headers=headers).status_code == 404
    assert client.get("/entries/wl-main/e0/1.jpg", headers=headers).content == JPEG
    detail = client.get(f"/api/alerts/{alert_id}", headers=headers).json()
    first, second = detail["reference_photos"]
    assert first == {
        "n": 0,
        "url": "/entries/wl-main/e0/0.jpg",
        "width": 240,
        "height": 129,
        "face_url": "/entries/wl-main/e0/0/face.jpg",
        "face_box": [155, 46, 198, 89],
        "face_note": None,
    }
    assert second["face_url"] is None and second["face_note"] == "not recorded here"
    login(client, "olga")
    page = client.get(f"/alerts/{alert_id}").text
    assert 'src="/entries/wl-main/e0/0/face.jpg"' in page and 'id="enrolled-face-0"' in page
    photo = re.search(
        r'<svg class="framed" id="photo-0" viewBox="0 0 240 129".*?</svg>', page, re.S
    )
    assert (
        photo is not None
        and '<rect class="box" x="155" y="46" width="43" height="43">' in photo.group(0)
    )
    missing = re.search(r'id="enrolled-missing-1">(.*?)</div>', page, re.S)
    assert missing is not None and "not recorded here" in missing.group(1)
    assert "The whole photo is below" in missing.group(1)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.42, "0.4 s"),
        (45, "45 s"),
        (900, "15 min"),
        (7500, "2 h 5 min"),
        (273600, "3 d 4 h"),
        (-3, "-3.0 s"),
    ],
)
def test_durations_read_as_a_person_says_them(seconds: float, text: str) -> None:
    assert duration_text(seconds) == text
