"""`edge dispatch serve` against a real Mosquitto, on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from alerts_helpers import make_config
from deadlines import SHOULD_HAPPEN_S
from dispatch_helpers import PASSWORD
from mqtt_fixtures import Mosquitto, free_port
from paths import REPO

import edge.cli
from edge.alerts.model import Review
from edge.alerts.service import AlertService
from edge.config import Config
from edge.dispatch.auth import Accounts
from edge.dispatch.rows import ContextFrame
from edge.services.dispatch import DispatchServer

DEMO = REPO / "edge" / "demo"


def dispatch_config(port: int, db: str, web_port: int, **dispatch: Any) -> Config:
    return make_config(
        port,
        dispatch={"db": db, "port": web_port, "batch_wait_ms": 5, **dispatch},
        alerts={"require_dispatch_ack": True, "dispatch_ack_timeout_s": 1.0},
        mqtt={"heartbeat_s": 0.3},
        audit={"fsync": False},
    )


def wait_until(predicate: Any, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return bool(predicate())


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'dispatch.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


def test_alert_is_stored_acknowledged_reviewed_and_the_device_hears_it(
    mosquitto: Mosquitto, tmp_path: Path, db_url: str
) -> None:
    web_port = free_port()
    config = dispatch_config(mosquitto.port, db_url, web_port)
    server = DispatchServer(config, state_dir=tmp_path / "centre")
    Accounts(server.store).add_user("olga", "operator", PASSWORD, by="test")
    token = Accounts(server.store).create_token("olga", by="test")
    reviews: list[Review] = []
    heard = threading.Event()

    def on_review(review: Review) -> None:
        reviews.append(review)
        heard.set()

    server.start()
    try:
        assert server.ingest.wait_connected(SHOULD_HAPPEN_S)
        with AlertService(config, state_dir=tmp_path / "device", on_review=on_review) as device:
            device.status(model_id="m", watchlist_id="wl-main", watchlist_version=7)
            alert_id = device.test_hit("live", 1)
            # Stored by dispatch, acknowledged end to end: the outbox is empty.
            assert device.publisher.wait_acked([alert_id], SHOULD_HAPPEN_S) == set()
            assert device.publisher.dispatch_acked == 1
            assert server.store.count_alerts() == 1
            api = httpx.Client(
                base_url=f"http://127.0.0.1:{web_port}",
                headers={"Authorization": f"Bearer {token}"},
            )
            (listed,) = api.get("/api/alerts").json()
            assert listed["alert_id"] == alert_id and listed["state"] == "new"
            done = api.post(
                f"/api/alerts/{alert_id}/review", json={"decision": "reject", "note": "not him"}
            )
            assert done.status_code == 200, done.text
            assert heard.wait(SHOULD_HAPPEN_S)
            assert wait_until(lambda: server.store.reviews_of(alert_id)[0].sent_at, SHOULD_HAPPEN_S)
            assert wait_until(
                lambda: any(
                    d["watchlist_id"] == "wl-main"
                    and d["outbox_depth"] == 0
                    and (d["audit_seq"] or 0) >= 3
                    for d in api.get("/api/devices").json()
                ),
                SHOULD_HAPPEN_S,
            )
            (dev,) = api.get("/api/devices").json()
            assert dev["device_id"] == "cam-1" and dev["online"] and dev["audit_problem"] is None
            assert dev["outbox_depth"] == 0 and dev["watchlist_version"] == "7"
            (wl,) = api.get("/api/watchlists").json()
            assert wl["in_force"] == {"7": ["cam-1"]}
    finally:
        server.stop()
    assert reviews[0].alert_id == alert_id and reviews[0].decision == "reject"
    assert reviews[0].note == "not him" and reviews[0].by == "olga"
    # The operator's action is in the centre's hash-chained audit log.
    assert (
        edge.cli.main(
            ["audit", "verify", "--path", str(tmp_path / "centre" / "dispatch-audit.jsonl")]
        )
        == 0
    )


def test_two_serve_processes_share_postgresql_and_split_the_alerts(
    mosquitto: Mosquitto, tmp_path: Path, postgres_url: str
) -> None:
    servers = [
        DispatchServer(
            dispatch_config(mosquitto.port, postgres_url, free_port()),
            state_dir=tmp_path / f"centre-{n}",
        )
        for n in range(2)
    ]
    assert all(s.ingest.shared for s in servers)
    for server in servers:
        server.start()
    try:
        assert all(s.ingest.wait_connected(SHOULD_HAPPEN_S) for s in servers)
        time.sleep(0.3)  # both subscriptions in place
        config = dispatch_config(mosquitto.port, postgres_url, free_port())
        with AlertService(config, state_dir=tmp_path / "device") as device:
            ids = [device.test_hit("shared", n) for n in range(300)]
            assert device.publisher.wait_acked(ids, 30) == set()
        assert servers[0].store.count_alerts() == 300
        assert sorted(servers[0].store.alert_ids()) == sorted(ids)
        stored = [s.ingest.stored for s in servers]
        assert all(n > 0 for n in stored), f"the shared subscription did not split: {stored}"
    finally:
        for server in servers:
            server.stop()


def test_import_list_brings_entry_details_and_reference_photos(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    photos = tmp_path / "photos" / "Lin-Manuel Miranda"
    photos.mkdir(parents=True)
    shutil.copyfile(DEMO / "lin-manuel-miranda.png", photos / "photo.png")
    (tmp_path / "entries.csv").write_text(
        "label,reason,case_ref,legal_basis\n"
        "Lin-Manuel Miranda,demo wanted person,CASE-42,demo warrant 7\n"
    )
    key = DEMO / "demo-keys" / "watchlist-signing.key"
    bundle = tmp_path / "list"
    assert (
        edge.cli.main(
            [
                "watchlist",
                "build",
                "--photos",
                str(tmp_path / "photos"),
                "--list-id",
                "demo",
                "--key",
                str(key),
                "--out",
                str(bundle),
                "--entries",
                str(tmp_path / "entries.csv"),
            ]
        )
        == 0
    )
    db = f"sqlite:///{tmp_path / 'd.db'}"
    pub = DEMO / "demo-keys" / "watchlist-signing.pub"
    code = edge.cli.main(
        [
            "dispatch",
            "import-list",
            str(bundle),
            "--photos",
            str(tmp_path / "photos"),
            "--pubkey",
            str(pub),
            "--db",
            db,
            "--json",
        ]
    )
    assert code == 0
    out = capsys.readouterr().out.strip().splitlines()[-1]
    assert '"entries": 1' in out and '"photos": 1' in out
    from edge.dispatch.store import Store

    with Store(db) as store:
        entry = store.entry("demo", "0")
        assert entry is not None and entry.case_ref == "CASE-42"
        assert entry.legal_basis == "demo warrant 7" and entry.photos == 1
        jpeg = store.entry_photo("demo", "0", 0)
        assert jpeg is not None and jpeg[:3] == b"\xff\xd8\xff"


def test_a_database_of_the_first_schema_is_upgraded_with_what_it_holds(
    tmp_path: Path, db_url: str
) -> None:
    """Alerts and reference photos stored before context frames and enrolled faces existed
    (migration 0001) are still shown after the upgrade (0002), beside new ones."""
    import json

    import cv2
    from alerts_helpers import sample_alert
    from dispatch_helpers import JPEG, client_for, login, make_deps, scene_frame, with_context
    from sqlalchemy import MetaData, Table, insert

    from edge.dispatch.received import received
    from edge.dispatch.store import Store

    old = sample_alert(0, crop_jpeg=JPEG).document()
    with Store(db_url, migrate=False) as first:
        assert first.migrate("0001") == "0001"
        with first.tx("fill the first schema") as conn:
            tables = MetaData()
            alerts, photos, entries = (
                Table(name, tables, autoload_with=conn)
                for name in ("alerts", "entry_photos", "entries")
            )
            assert "has_context" not in alerts.c and "face_jpeg" not in photos.c
            conn.execute(
                insert(alerts).values(
                    alert_id=old["alert_id"],
                    device_id="cam-1",
                    event_time=old["event_time"],
                    received_at=time.time(),
                    watchlist_id="wl-main",
                    watchlist_version="7",
                    entry_id="e0",
                    entry_label="Person 0",
                    score=0.71,
                    threshold=0.6,
                    quality=0.83,
                    track_id=0,
                    model_id="mobilefacenet-fp32",
                    test=False,
                    has_crop=False,
                    state="new",
                    document=json.dumps({k: v for k, v in old.items() if k != "crop"}),
                )
            )
            conn.execute(
                insert(entries).values(
                    list_id="wl-main", entry_id="e0", label="Person 0", photos=1, version=7
                )
            )
            conn.execute(
                insert(photos).values(
                    list_id="wl-main", entry_id="e0", n=0, photo="a" * 32, jpeg=JPEG
                )
            )
    with Store(db_url) as store:  # upgrades to the newest schema
        row = store.get_alert(old["alert_id"])
        assert row["has_context"] is False and store.context(old["alert_id"]) is None
        (photo,) = store.entry_photos("wl-main", "e0")
        assert photo.width is None and not photo.has_face
        scene = cv2.imencode(".jpg", scene_frame())[1].tobytes()
        new = with_context(sample_alert(1), scene, (432, 149, 533, 251))
        store.ingest([received(new.encode())])
        assert store.context(new.alert_id) == ContextFrame(
            width=640, height=360, box=[432, 149, 533, 251]
        )
        client = client_for(make_deps(store))
        login(client, "olga")
        page = client.get(f"/alerts/{old['alert_id']}")
        assert page.status_code == 200 and 'class="reference"' in page.text
        assert "no scene frame sent" in page.text
        assert 'id="context"' in client.get(f"/alerts/{new.alert_id}").text
