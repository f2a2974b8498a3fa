"""`edge run`: the bundled demo, the installed list, the review video, errors and signals."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import cv2
import pytest
from alerts_helpers import Collector
from deadlines import SHOULD_HAPPEN_S
from mqtt_fixtures import Mosquitto
from paths import REPO
from video_helpers import DEMO_CLIP, DEMO_PUBLIC_KEY, DEMO_WATCHLIST, damaged_clip

from edge import audit
from edge.alerts.schema import validate_alert
from edge.cli import main
from edge.config import Config
from edge.models import ModelPin
from edge.pipeline.analyzer import FaceAnalyzer
from edge.watchlist import keys as keyring
from edge.watchlist.install import WatchlistStore

QUIET = ["--no-publish", "--no-status"]


def _alerts_in(db: Path) -> list[dict[str, object]]:
    with sqlite3.connect(db) as conn:
        return [json.loads(row[0]) for row in conn.execute("SELECT payload FROM outbox")]


def test_edge_run_without_arguments_runs_the_demo(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("EDGE_STATE_DIR", raising=False)
    assert main(["run", "--no-status"]) == 0
    out = capsys.readouterr().out
    alerts = [line for line in out.splitlines() if line.startswith("ALERT")]
    # One person on the list, in view twice: one alert (the cooldown covers the whole clip).
    assert len(alerts) == 1 and "(test)" in alerts[0] and "Lin-Manuel Miranda" in alerts[0]
    frame = int(re.search(r"frame (\d+)", alerts[0]).group(1))  # type: ignore[union-attr]
    assert frame <= 20 or 82 <= frame <= 210
    assert "run ended: end of source" in out and "processed 275" in out
    # Counts agree with their nouns: the demo list has one entry and one alert is raised.
    assert "(1 entry)" in out and not re.search(r"\b1 (entries|faces|alerts|frames)\b", out)
    stored = _alerts_in(tmp_path / "xdg" / "edge" / "demo" / "outbox.db")
    assert len(stored) == 1 and stored[0]["test"] is True


def test_run_against_the_installed_list(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    analyzer = FaceAnalyzer(Config())
    store = WatchlistStore(
        tmp_path / "state" / "watchlist",
        keyring.load_public_key(DEMO_PUBLIC_KEY),
        ModelPin(analyzer.model_name, analyzer.model_sha256),
    )
    store.install(DEMO_WATCHLIST)
    args = ["run", "--source", str(DEMO_CLIP), "--pubkey", str(DEMO_PUBLIC_KEY)]
    code = main([*args, "--state-dir", str(tmp_path / "state"), "--max-frames", "40", *QUIET])
    assert code == 0
    out = capsys.readouterr().out
    assert "run ended: read 40 frames (--max-frames)" in out
    assert len([line for line in out.splitlines() if line.startswith("ALERT ")]) == 1
    assert len(_alerts_in(tmp_path / "state" / "outbox.db")) == 1
    assert audit.verify(tmp_path / "state" / "audit.jsonl").ok


FLUSH = "sent again on the next run or by `edge outbox flush`"


@pytest.mark.parametrize(
    ("delivery", "why", "counts"),
    [
        (
            ["--no-publish"],
            ": not sent, this run did not publish; `edge outbox flush` sends it",
            {"not_published": 1},
        ),
        (["--broker", "127.0.0.1:1"], ": never sent, no broker (connection refused", None),
        (
            ["--broker", "MOSQUITTO"],
            f": sent, nobody subscribed (is `edge dispatch serve` running?); {FLUSH}",
            {"no_subscriber": 1},
        ),
        (
            ["--broker", "MOSQUITTO", "+tail"],
            f": sent, no dispatch ack yet (alerts.require_dispatch_ack); {FLUSH}",
            {"at_broker": 1},
        ),
    ],
    ids=["no-publish", "no-broker", "no-subscriber", "no-dispatch-ack"],
)
def test_the_summary_says_what_waits_in_the_outbox_and_why(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    request: pytest.FixtureRequest,
    delivery: list[str],
    why: str,
    counts: dict[str, int] | None,
) -> None:
    """An alert nobody received is not hidden behind 'failed 0': the summary and the metrics say
    it waits in the outbox, where, and why (alerts.require_dispatch_ack is on by default)."""
    collector = None
    if "MOSQUITTO" in delivery:
        broker: Mosquitto = request.getfixturevalue("mosquitto")
        if "+tail" in delivery:  # a plain subscriber, as `edge alerts tail`: it sends no acks
            collector = Collector(broker.port, "edge/v1/+/alert")
        delivery = ["--broker", f"127.0.0.1:{broker.port}"]
    state = tmp_path / "state"
    args = ["run", "--source", str(DEMO_CLIP), "--watchlist", str(DEMO_WATCHLIST)]
    args += ["--pubkey", str(DEMO_PUBLIC_KEY), "--state-dir", str(state), "--no-status"]
    metrics_json = tmp_path / "m.json"
    try:
        code = main([*args, "--max-frames", "40", "--metrics-json", str(metrics_json), *delivery])
        assert code == 0
        out = capsys.readouterr().out
        outbox = state / "outbox.db"
        (line,) = [line for line in out.splitlines() if line.startswith("  alerts:")]
        assert line.startswith("  alerts: 1 raised (suppressed by cooldown ")
        assert f"; 1 waiting in the outbox ({outbox}){why}" in line
        assert line.endswith(FLUSH) or "not_published" in (counts or {})
        alerts = json.loads(metrics_json.read_text())["alerts"]
        assert alerts["raised"] == 1 and alerts["failed"] == 0
        assert alerts["waiting_in_outbox"] == 1 and alerts["outbox_total"] == 1
        assert alerts["outbox"] == str(outbox)
        assert alerts["waiting_why"] == (counts or {"unsent": 1})
        # A second run: its own alert waits, and the first run's is still there too.
        assert main([*args, "--max-frames", "40", *delivery]) == 0
        (line,) = [s for s in capsys.readouterr().out.splitlines() if s.startswith("  alerts:")]
        assert f"; 1 waiting in the outbox, 1 more from before ({outbox}){why}" in line
    finally:
        if collector is not None:
            collector.close()


def _fourcc(video: cv2.VideoCapture) -> str:
    code = int(video.get(cv2.CAP_PROP_FOURCC)) & 0xFFFFFFFF
    return code.to_bytes(4, "little").decode("ascii", "replace")


def test_annotated_review_video_plays_in_a_browser(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """.webm is written as VP8 (browsers play it, unlike MPEG-4 Part 2), readable back; an
    existing file needs --force; .mp4 is H.264 where this OpenCV build can encode it, else
    refused with what it can write. OpenCV's notice that WebM has no tag for the fourcc (the
    file is right) is not printed: stderr is read at the descriptor, where FFmpeg writes."""
    from edge.pipeline.annotate import probe_codec

    out = tmp_path / "review.webm"
    args = ["run", "--source", str(DEMO_CLIP), "--watchlist", str(DEMO_WATCHLIST)]
    args += ["--pubkey", str(DEMO_PUBLIC_KEY), "--state-dir", str(tmp_path / "state")]
    args += ["--max-frames", "30", *QUIET]
    capfd.readouterr()
    assert main([*args, "--annotate", str(out)]) == 0
    err = capfd.readouterr().err
    assert "FFMPEG" not in err and "not supported" not in err, err
    video = cv2.VideoCapture(str(out))
    frames = 0
    while video.read()[0]:
        frames += 1
    assert frames == 30
    assert video.get(cv2.CAP_PROP_FRAME_WIDTH) == 640
    assert _fourcc(video) in ("VP80", "VP90")
    video.release()

    written = out.read_bytes()
    capfd.readouterr()
    assert main([*args, "--annotate", str(out)]) == 2
    err = capfd.readouterr().err
    assert "already exists" in err and "--force" in err and err.count("\n") == 1
    assert out.read_bytes() == written
    assert main([*args, "--annotate", str(out), "--force", "--max-frames", "10"]) == 0
    video = cv2.VideoCapture(str(out))
    frames = 0
    while video.read()[0]:
        frames += 1
    assert frames == 10  # rewritten
    video.release()

    mp4 = tmp_path / "review.mp4"
    code = main([*args, "--annotate", str(mp4)])
    err = capfd.readouterr().err
    if probe_codec(".mp4") is not None:
        assert code == 0
        assert _fourcc(cv2.VideoCapture(str(mp4))) in ("avc1", "h264", "H264")
    else:
        assert code == 2 and "cannot write H.264 for .mp4; it can write .webm (VP8)" in err
        assert not mp4.exists()


def test_labels_are_drawn_on_a_filled_background() -> None:
    import numpy as np

    from edge.pipeline.annotate import MATCHED, annotate
    from edge.pipeline.frames import FaceView

    image = np.full((200, 300, 3), 255, np.uint8)  # a white wall: green text would vanish
    drawn = annotate(image, [FaceView((100.0, 80.0, 160.0, 150.0), 7, "Alice")])
    label = drawn[60:78, 101:150]  # the label box sits just above the face box
    filled = np.all(label == np.array(MATCHED, np.uint8), axis=2).mean()
    dark = (label.max(axis=2) < 60).mean()  # the text, in black
    assert filled > 0.5 and dark > 0.05


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--source", "no-such-clip.mp4"], "no-such-clip.mp4: no such file, folder or camera"),
        (["--source", "gopher://cam/1"], "unsupported stream scheme"),
        (["--watchlist", str(DEMO_WATCHLIST)], "no trusted public key"),
        (["--source", str(DEMO_CLIP)], "no trusted public key"),
        (["--broker", "nohost"], "expected HOST:PORT"),
        (["--max-fps", "-1"], "capture.max_fps"),
        (["--annotate", "review.txt"], "write a browser-playable .webm or .mp4"),
        (["--annotate", "review.avi"], "it can write .webm (VP"),
    ],
)
def test_errors_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    assert main(["run", "--state-dir", str(tmp_path), *extra, *QUIET]) == 2
    err = capsys.readouterr().err
    assert "edge: error: " in err and message in err and "Traceback" not in err


def test_a_damaged_clip_is_run_to_its_end_and_its_corrupt_frames_counted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clip = damaged_clip(tmp_path / "zeroed.mp4", "zeroed")
    metrics = tmp_path / "m.json"
    args = ["run", "--source", str(clip), "--watchlist", str(DEMO_WATCHLIST)]
    args += ["--pubkey", str(DEMO_PUBLIC_KEY), "--state-dir", str(tmp_path / "state")]
    assert main([*args, "--metrics-json", str(metrics), *QUIET]) == 0
    out = capsys.readouterr().out
    frames = json.loads(metrics.read_text())["frames"]
    # before: "end of source" after 136 frames, the rest of the clip never seen
    assert frames["processed"] >= 250 and frames["corrupt"] == 275 - frames["processed"]
    assert f"processed {frames['processed']} " in out and f"corrupt {frames['corrupt']};" in out


def test_a_clip_that_yields_no_frame_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clip = damaged_clip(tmp_path / "scrambled.mp4", "scrambled")
    args = ["run", "--source", str(clip), "--watchlist", str(DEMO_WATCHLIST)]
    args += ["--pubkey", str(DEMO_PUBLIC_KEY), "--state-dir", str(tmp_path / "state")]
    assert main([*args, *QUIET]) == 2
    err = capsys.readouterr().err
    assert f"edge: error: capture from {clip} failed: no frame of the video" in err


def test_no_installed_list_and_a_wrong_key_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["run", "--source", str(DEMO_CLIP), "--state-dir", str(tmp_path), *QUIET]
    assert main([*base, "--pubkey", str(DEMO_PUBLIC_KEY)]) == 2
    assert "no watchlist installed" in capsys.readouterr().err
    _, other_public = keyring.generate_keypair(tmp_path / "other")
    assert main([*base, "--watchlist", str(DEMO_WATCHLIST), "--pubkey", str(other_public)]) == 2
    assert "signature" in capsys.readouterr().err


def test_sigterm_stops_the_run_cleanly(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "edge",
            "run",
            "--realtime",  # the clip plays for 9 s: time to stop it half-way
            "--state-dir",
            str(tmp_path / "state"),
            "--metrics-json",
            str(tmp_path / "metrics.json"),
            *QUIET,
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        deadline = time.monotonic() + 60
        for line in process.stderr:  # wait until it is watching
            if "watching" in line or time.monotonic() > deadline:
                break
        time.sleep(1.5)
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 0, err
    assert "run ended: stopped by SIGTERM" in out and "Traceback" not in err
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert 0 < metrics["frames"]["read"] < 275
    assert audit.verify(tmp_path / "state" / "audit.jsonl").ok


def test_a_newly_installed_list_is_picked_up(tmp_path: Path) -> None:
    import shutil

    from edge.demo import DEMO_DIR
    from edge.services.run_setup import installed_watchlist

    analyzer = FaceAnalyzer(Config())
    root = tmp_path / "state" / "watchlist"
    store = WatchlistStore(
        root,
        keyring.load_public_key(DEMO_PUBLIC_KEY),
        ModelPin(analyzer.model_name, analyzer.model_sha256),
    )
    store.install(DEMO_WATCHLIST)
    watchlist, reload = installed_watchlist(Config(), tmp_path / "state", DEMO_PUBLIC_KEY)
    assert watchlist.version == 1 and reload() is None
    # The hub (here: the demo key) signs version 2 and the device installs it while running.
    person = tmp_path / "photos" / "Lin-Manuel Miranda"
    person.mkdir(parents=True)
    shutil.copyfile(DEMO_DIR / "lin-manuel-miranda.png", person / "photo.png")
    build = ["watchlist", "build", "--photos", str(person.parent), "--list-id", "demo"]
    key = DEMO_DIR / "demo-keys" / "watchlist-signing.key"
    assert main([*build, "--key", str(key), "--out", str(tmp_path / "v2"), "--version", "2"]) == 0
    store.install(tmp_path / "v2")
    fresh = reload()
    assert fresh is not None and fresh.version == 2
    assert reload() is None


def test_the_demo_publishes_to_a_broker_it_is_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mosquitto: Mosquitto
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("EDGE_STATE_DIR", raising=False)
    collector = Collector(mosquitto.port, "edge/v1/+/alert")
    try:
        assert main(["run", "--broker", f"127.0.0.1:{mosquitto.port}", "--no-status"]) == 0
        assert collector.wait_for(lambda c: len(c.alert_ids()) == 1, SHOULD_HAPPEN_S)
    finally:
        collector.close()
    (alert,) = collector.payloads()
    validate_alert(alert)
    assert alert["test"] is True and alert["entry"]["label"] == "Lin-Manuel Miranda"
    # The broker took it, but no dispatch stored it (alerts.require_dispatch_ack, the default):
    # it waits in the outbox and is sent again on the next run.
    (kept,) = _alerts_in(tmp_path / "xdg" / "edge" / "demo" / "outbox.db")
    assert kept["alert_id"] == alert["alert_id"]


def test_systemd_is_told_ready_fed_and_told_stopping(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind(str(path))
        listener.settimeout(0.1)
        monkeypatch.setenv("NOTIFY_SOCKET", str(path))
        monkeypatch.setenv("WATCHDOG_USEC", "1000000")  # 1 s: fed every 0.5 s
        args = ["run", "--realtime", "--max-frames", "60", "--state-dir", str(tmp_path / "st")]
        assert main([*args, *QUIET]) == 0
        messages = []
        while True:
            try:
                messages.append(listener.recv(4096).decode())
            except TimeoutError:
                break
    kinds = [m.split("\n")[0].split("=")[0] for m in messages]
    assert kinds[0] == "READY" and "watching" in messages[0]
    assert kinds.count("WATCHDOG") >= 2 and "STATUS" in kinds
    assert kinds[-1] == "STOPPING"


def test_the_review_video_plays_in_chromium(tmp_path: Path) -> None:
    """What "browser-playable" means: Debian's Chromium decodes the file --annotate wrote."""
    playwright = pytest.importorskip("playwright.sync_api")
    from test_dispatch_browser import ARGS, CHROMIUM

    if not Path(CHROMIUM).exists():
        pytest.skip("no chromium")
    out = tmp_path / "review.webm"
    args = ["run", "--source", str(DEMO_CLIP), "--watchlist", str(DEMO_WATCHLIST)]
    args += ["--pubkey", str(DEMO_PUBLIC_KEY), "--state-dir", str(tmp_path / "state")]
    assert main([*args, "--max-frames", "30", "--annotate", str(out), *QUIET]) == 0
    page_file = tmp_path / "play.html"
    page_file.write_text(f'<video id="v" src="{out.name}" muted preload="auto"></video>')
    with playwright.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page()
            page.goto(page_file.as_uri())
            played = page.evaluate(
                """() => new Promise(done => {
                    const v = document.getElementById("v");
                    const report = () => done({width: v.videoWidth, height: v.videoHeight,
                        duration: v.duration, error: v.error && v.error.code});
                    if (v.readyState >= 2) report();
                    v.addEventListener("loadeddata", report);
                    v.addEventListener("error", report);
                    setTimeout(report, 10000);
                })"""
            )
        finally:
            browser.close()
    assert played["error"] is None, played
    assert (played["width"], played["height"]) == (640, 360) and played["duration"] > 0.5
