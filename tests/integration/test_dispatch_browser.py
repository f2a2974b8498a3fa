"""The console in a real browser: Debian's Chromium driven by Playwright (never downloaded).

Log in; an alert sent with `edge alerts test` appears in the open list within 2 s without a
reload; open it; reject it with a note; the device receives the review. The alert page of a
demo hit (crop beside the enrolled photo) is screenshotted; with EDGE_UPDATE_DOCS=1 it replaces
docs/dispatch-alert.png (a test run never changes a tracked file otherwise).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from dispatch_helpers import PASSWORD
from mqtt_fixtures import Mosquitto, free_port
from paths import REPO
from test_dispatch_live import dispatch_config

import edge.cli
from edge.alerts.schema import Review
from edge.alerts.service import AlertService
from edge.dispatch.auth import Accounts
from edge.services.dispatch import DispatchServer

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
SCREENSHOT = REPO / "docs" / "dispatch-alert.png"


def _demo_list(tmp_path: Path) -> tuple[Path, Path]:
    photos = tmp_path / "photos" / "Lin-Manuel Miranda"
    photos.mkdir(parents=True)
    shutil.copyfile(DEMO / "lin-manuel-miranda.png", photos / "photo.png")
    (tmp_path / "entries.csv").write_text(
        "label,reason,case_ref,legal_basis,expires\n"
        "Lin-Manuel Miranda,Demo: missing person report,CASE-2025-0042,"
        "Demo warrant 7/2025,2026-12-31\n"
    )
    bundle = tmp_path / "list"
    build = ["watchlist", "build", "--photos", str(tmp_path / "photos"), "--list-id", "demo"]
    key = DEMO / "demo-keys" / "watchlist-signing.key"
    entries = ["--entries", str(tmp_path / "entries.csv")]
    assert edge.cli.main([*build, "--key", str(key), "--out", str(bundle), *entries]) == 0
    return bundle, tmp_path / "photos"


def test_console_in_chromium(mosquitto: Mosquitto, tmp_path: Path) -> None:
    playwright = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed (Debian packages chromium, chromium-driver)")
    web_port = free_port()
    db = f"sqlite:///{tmp_path / 'dispatch.db'}"
    config = dispatch_config(mosquitto.port, db, web_port)
    bundle, photos = _demo_list(tmp_path)
    pub = DEMO / "demo-keys" / "watchlist-signing.pub"
    assert (
        edge.cli.main(
            [
                "dispatch",
                "import-list",
                str(bundle),
                "--photos",
                str(photos),
                "--pubkey",
                str(pub),
                "--db",
                db,
            ]
        )
        == 0
    )
    server = DispatchServer(config, state_dir=tmp_path / "centre")
    Accounts(server.store).add_user("olga", "operator", PASSWORD, by="test")
    config_file = tmp_path / "device.yaml"
    config_file.write_text(
        f"device:\n  id: cam-1\n  location: {{name: North gate, lat: 51.5, lon: -0.12}}\n"
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
            assert server.ingest.wait_connected(10) and device.publisher.wait_connected(10)
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            base = f"http://127.0.0.1:{web_port}"
            page.goto(f"{base}/")  # the list: redirected to the login form first
            page.fill("input[name=username]", "olga")
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_selector("#alert-rows", state="attached")
            page.wait_for_timeout(500)  # the live feed (SSE) is connected
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
            row = page.wait_for_selector(f'tr[data-alert="{alert_id}"]', timeout=2000)
            appeared = time.monotonic() - queued
            assert row is not None and appeared <= 2.0
            assert sender.wait(30) == 0  # dispatch's ack reached the sender: delivered end to end
            page.click(f'tr[data-alert="{alert_id}"] a')
            page.wait_for_selector("#review-form")
            page.fill("textarea[name=note]", "not him: different person, checked on camera 2")
            page.click("button[value=reject]")
            page.wait_for_selector("#alert-state")
            assert page.inner_text("#alert-state") == "rejected"
            assert heard.wait(10), "the device did not receive the review"
            assert reviews[0].alert_id == alert_id and reviews[0].decision == "reject"
            assert reviews[0].note == "not him: different person, checked on camera 2"

            # A demo hit with a crop, for the screenshot: probe beside the enrolled photo.
            crop = (DEMO / "lin-manuel-miranda.png").read_bytes()
            import cv2
            import numpy as np

            image = cv2.imdecode(np.frombuffer(crop, np.uint8), cv2.IMREAD_COLOR)
            jpeg = cv2.imencode(".jpg", cv2.resize(image, (160, 160)))[1].tobytes()
            hit = device.hit(
                watchlist_id="demo",
                watchlist_version=1,
                entry_id="0",
                entry_label="Lin-Manuel Miranda",
                score=0.62,
                threshold=0.37,
                quality=0.91,
                track_id=12,
                model_id="mobilefacenet-fp32",
                crop_jpeg=jpeg,
            )
            assert device.publisher.wait_acked([hit["alert_id"]], 10) == set()
            page.goto(f"{base}/alerts/{hit['alert_id']}")
            page.wait_for_selector("img.reference")
            assert "CASE-2025-0042" in page.inner_text("#case-ref")
            page.screenshot(path=str(tmp_path / "alert.png"), full_page=True)
            browser.close()
    finally:
        server.stop()
    assert (tmp_path / "alert.png").stat().st_size > 10_000
    if os.environ.get("EDGE_UPDATE_DOCS") == "1":
        shutil.copyfile(tmp_path / "alert.png", SCREENSHOT)
    print(f"alert appeared {appeared:.2f}s after it was queued")
