"""The console in a real browser: Debian's Chromium driven by Playwright (never downloaded).

Log in; an alert sent with `edge alerts test` appears in the open list within 2 s without a
reload, marked TEST; its page carries the test banner and says where the place would come
from; reject it with a note; the device receives the review. Then a real hit as a dispatcher
must judge it: the list is built from a photo of two people, and the alert (captured 15 min
before it arrived, with a scene frame) reaches the open list live, marked late. Its page shows
the enrolled face crop of the right person (its embedding is his, not the other person's), the
enrolment photo with that face boxed, the scene exactly as sent with the box drawn over the
matched face, times in the browser's zone with UTC on hover, and the person's label. The page and
the list are screenshotted; with EDGE_UPDATE_DOCS=1 they replace docs/dispatch-alert.png and
docs/dispatch-list.png (a test run never changes a tracked file otherwise).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import cv2
import pytest
from alerts_helpers import sample_alert
from deadlines import SHOULD_HAPPEN_S
from dispatch_helpers import (
    ENROLLED,
    PASSWORD,
    assert_is_the_enrolled_person,
    scene_frame,
    two_people_photo,
    with_context,
)
from mqtt_fixtures import Mosquitto, free_port
from paths import REPO
from recognition_helpers import analyzer
from test_dispatch_live import dispatch_config

import edge.cli
from edge.alerts.model import Review
from edge.alerts.service import AlertService
from edge.dispatch.auth import Accounts
from edge.pipeline.frames import face_crop_jpeg
from edge.services.dispatch import DispatchServer
from edge.types import iou
from edge.watchlist import keys as keyring
from edge.watchlist.bundle import read_bundle
from edge.watchlist.details import details_path, read_details

PAGE_WAIT_MS = round(SHOULD_HAPPEN_S * 1000)  # Playwright counts in milliseconds
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DEMO = REPO / "edge" / "demo"
KEY = DEMO / "demo-keys" / "watchlist-signing.key"
PUB = DEMO / "demo-keys" / "watchlist-signing.pub"
SCREENSHOT = REPO / "docs" / "dispatch-alert.png"
LIST_SCREENSHOT = REPO / "docs" / "dispatch-list.png"
ZONE = "Asia/Kolkata"  # UTC+05:30 all year: local time cannot pass for UTC
LATE_BY = timedelta(minutes=15)


def _two_people_list(tmp_path: Path) -> tuple[Path, Path]:
    two_people_photo(tmp_path / "photos" / ENROLLED / "with-a-colleague.jpg")
    (tmp_path / "entries.csv").write_text(
        "label,reason,case_ref,legal_basis,expires\n"
        f"{ENROLLED},Demo: missing person report,CASE-2025-0042,Demo warrant 7/2025,2099-12-31\n"
    )
    bundle = tmp_path / "list"
    build = ["watchlist", "build", "--photos", str(tmp_path / "photos"), "--list-id", "gate"]
    entries = ["--entries", str(tmp_path / "entries.csv")]
    assert edge.cli.main([*build, "--key", str(KEY), "--out", str(bundle), *entries]) == 0
    return bundle, tmp_path / "photos"


def _box_in_image(page: Any, svg: str) -> tuple[float, float, float, float]:
    """The box drawn over an SVG-framed picture, in the picture's own pixels (from where the
    browser laid both out)."""
    frame = page.locator(f"svg#{svg}")
    drawn = page.locator(f"svg#{svg} rect.box").bounding_box()
    shown = frame.bounding_box()
    width, height = (float(v) for v in frame.get_attribute("viewBox").split()[2:])
    sx, sy = width / shown["width"], height / shown["height"]
    return (
        (drawn["x"] - shown["x"]) * sx,
        (drawn["y"] - shown["y"]) * sy,
        (drawn["x"] + drawn["width"] - shown["x"]) * sx,
        (drawn["y"] + drawn["height"] - shown["y"]) * sy,
    )


def _local(iso: str) -> str:
    """HH:MM:SS of a UTC time in the browser's zone."""
    moment = datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone(ZoneInfo(ZONE))
    return moment.strftime("%H:%M:%S")


def test_console_in_chromium(mosquitto: Mosquitto, tmp_path: Path) -> None:
    playwright = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed (Debian packages chromium, chromium-driver)")
    web_port = free_port()
    db = f"sqlite:///{tmp_path / 'dispatch.db'}"
    config = dispatch_config(mosquitto.port, db, web_port)
    bundle, photos = _two_people_list(tmp_path)
    importing = ["dispatch", "import-list", str(bundle), "--photos", str(photos)]
    assert edge.cli.main([*importing, "--pubkey", str(PUB), "--db", db]) == 0
    public_key = keyring.load_public_key(PUB)
    details = read_details(details_path(bundle), public_key, read_bundle(bundle, public_key))
    enrolled_box = details.entries[0].faces[0].box  # in the 560 x 300 photo

    server = DispatchServer(config, state_dir=tmp_path / "centre")
    Accounts(server.store).add_user("olga", "operator", PASSWORD, by="test")
    config_file = tmp_path / "device.yaml"
    config_file.write_text(  # no device.location: the test alert's page says where it is set
        f"device:\n  id: cam-1\n"
        f"mqtt:\n  host: 127.0.0.1\n  port: {mosquitto.port}\n  reconnect_min_s: 0.05\n"
        "  reconnect_max_s: 0.3\n"
        "alerts:\n  require_dispatch_ack: true\n  dispatch_ack_timeout_s: 1\n"
        "audit:\n  fsync: false\n"
    )
    reviews: list[Review] = []
    heard = threading.Event()

    def on_review(review: Review) -> None:
        reviews.append(review)
        heard.set()

    device_state = tmp_path / "device"
    device_config = edge.config.load_config(config_file)
    server.start()
    try:
        with (
            AlertService(device_config, state_dir=device_state, on_review=on_review) as device,
            playwright.sync_playwright() as pw,
        ):
            assert server.ingest.wait_connected(SHOULD_HAPPEN_S)
            assert device.publisher.wait_connected(SHOULD_HAPPEN_S)
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            context = browser.new_context(
                viewport={"width": 1280, "height": 900}, timezone_id=ZONE, locale="en-GB"
            )
            page = context.new_page()
            base = f"http://127.0.0.1:{web_port}"
            page.goto(f"{base}/")  # the list: redirected to the login form first
            page.fill("input[name=username]", "olga")
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_selector("#live.up", timeout=PAGE_WAIT_MS)  # the live feed (SSE) is open
            sender = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "edge",
                    "alerts",
                    "test",
                    "--count",
                    "1",
                    "--print-ids",
                    "--config",
                    str(config_file),
                    "--state-dir",
                    str(device_state),
                ],
                stdout=subprocess.PIPE,
                text=True,
                cwd=REPO,
            )
            assert sender.stdout is not None
            alert_id = sender.stdout.readline().strip()
            queued = time.monotonic()
            # Live: the row comes over the page's event stream, never by a reload (how soon is
            # `edge bench dispatch`'s to measure, not a loaded test machine's).
            row = page.wait_for_selector(f'tr[data-alert="{alert_id}"]', timeout=PAGE_WAIT_MS)
            print(f"the test alert appeared {time.monotonic() - queued:.2f} s after it was queued")
            assert row is not None
            assert sender.wait(30) == 0  # dispatch's ack reached the sender: delivered end to end
            chip = page.locator(f'tr[data-alert="{alert_id}"] .tag.test')
            assert chip.inner_text() == "TEST" and chip.is_visible()
            page.click(f'tr[data-alert="{alert_id}"] a[href^="/alerts/"] >> nth=1')
            page.wait_for_selector("#review-form")
            banner = page.locator("#test-banner").bounding_box()
            assert banner is not None and banner["width"] > 1000 and banner["height"] >= 30
            assert "TEST ALERT" in page.inner_text("#test-banner")
            assert "device.location" in page.inner_text("#place")
            page.fill("textarea[name=note]", "not him: different person, checked on camera 2")
            page.click("button[value=reject]")
            page.wait_for_selector("#alert-state")
            assert page.inner_text("#alert-state") == "rejected"
            assert heard.wait(SHOULD_HAPPEN_S), "the device did not receive the review"
            assert reviews[0].alert_id == alert_id and reviews[0].decision == "reject"
            assert reviews[0].note == "not him: different person, checked on camera 2"

            # A real hit, captured 15 minutes before it is sent, with its scene frame.
            scene = scene_frame()
            (seen,) = analyzer().analyze(scene)  # every other face in it is blurred
            box = tuple(round(v) for v in seen.box)
            scene_jpeg = cv2.imencode(".jpg", scene, [cv2.IMWRITE_JPEG_QUALITY, 85])[1].tobytes()
            crop = face_crop_jpeg(scene, seen.box, 240)
            assert crop is not None
            captured = datetime.now(UTC) - LATE_BY
            hit = with_context(
                sample_alert(
                    12,
                    watchlist_id="gate",
                    watchlist_version=details.version,
                    entry_id="0",
                    entry_label=ENROLLED,
                    score=0.62,
                    threshold=0.45,
                    quality=0.91,
                    event_time=captured,
                    location={"name": "North gate", "lat": 51.5, "lon": -0.12},
                    crop_jpeg=crop,
                ),
                scene_jpeg,
                box,
            )
            page.goto(f"{base}/")
            page.wait_for_selector("#live.up", timeout=PAGE_WAIT_MS)
            device.outbox.enqueue(hit)
            assert device.publisher.wait_acked([hit.alert_id], SHOULD_HAPPEN_S) == set()
            live_row = f'tr[data-alert="{hit.alert_id}"]'
            page.wait_for_selector(live_row, timeout=PAGE_WAIT_MS)
            assert page.inner_text(f"{live_row} .tag.late") == "late 15 min"
            assert not page.locator(f"{live_row} .tag.test").count()
            page.screenshot(path=str(tmp_path / "list.png"))
            page.click(f"{live_row} a >> nth=0")
            page.wait_for_selector("#enrolled-face-0")
            page.wait_for_load_state("load")  # the pictures too

            # The enrolled face: his, cropped from the photo of two; the photo beside it.
            face = page.locator("#enrolled-face-0")
            assert face.evaluate("img => img.complete && img.naturalWidth > 0")
            face_jpeg = page.request.get(base + str(face.get_attribute("src"))).body()
            assert_is_the_enrolled_person(face_jpeg)
            scale = 240 / 560
            marked = _box_in_image(page, "photo-0")
            assert iou(marked, tuple(v * scale for v in enrolled_box)) > 0.85, marked

            # The scene, as the device sent it, the box drawn over the matched face.
            href = page.locator("svg#context image").get_attribute("href")
            assert page.request.get(base + str(href)).body() == scene_jpeg
            drawn = _box_in_image(page, "context")
            assert iou(drawn, seen.box) > 0.9, (drawn, seen.box)

            # The facts a dispatcher reads: who, where, when (local, UTC on hover), how late.
            assert ENROLLED in page.inner_text("#entry") and "entry id 0" in page.inner_text(
                "#entry"
            )
            assert page.inner_text("h1").startswith(ENROLLED)
            assert "North gate" in page.inner_text("#place")
            when = page.locator("#captured time")
            assert _local(hit.event_time) in when.inner_text()
            assert "UTC" not in when.inner_text()
            assert when.get_attribute("title") == hit.event_time.replace("T", " ").replace(
                "Z", " UTC"
            )
            assert "15 min" in page.inner_text("#late-mark")
            assert "CASE-2025-0042" in page.inner_text("#case-ref")
            assert not page.locator("#test-banner").count()
            page.screenshot(path=str(tmp_path / "alert.png"), full_page=True)
            browser.close()
    finally:
        server.stop()
    assert (tmp_path / "alert.png").stat().st_size > 10_000
    if os.environ.get("EDGE_UPDATE_DOCS") == "1":
        shutil.copyfile(tmp_path / "alert.png", SCREENSHOT)
        shutil.copyfile(tmp_path / "list.png", LIST_SCREENSHOT)
