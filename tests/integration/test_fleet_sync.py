"""Watchlist sync end to end: a real Mosquitto broker, the hub CLI, and two device processes
(``python -m edge sync --agent``), each with its own state directory and client id."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import pytest
from deadlines import SHOULD_HAPPEN_S
from fleet_helpers import (
    LIST_ID,
    Device,
    Watcher,
    device_config,
    full_bundle,
    next_bundles,
    two_versions,
)
from mqtt_fixtures import Mosquitto
from watchlist_helpers import make_keys, people

from edge.cli import main
from edge.config import load_config
from edge.fleet.hub import prepare, publish_prepared
from edge.fleet.sync import WatchlistSync
from edge.mqtt.oneshot import connect_and_wait, read_retained, tool_client
from edge.mqtt.topics import ListTopics
from edge.watchlist import keys as keyring
from edge.watchlist.install import open_store

CHUNK = 4096  # small chunks, so every transfer has dozens of them


def _publish(capsys: pytest.CaptureFixture[str], port: int, *bundles: Path, pubkey: Path) -> dict:
    code = main(
        [
            "hub",
            "publish",
            *map(str, bundles),
            "--broker",
            f"127.0.0.1:{port}",
            "--chunk-bytes",
            str(CHUNK),
            "--pubkey",
            str(pubkey),
            "--json",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    result: dict = json.loads(out)
    return result


@pytest.fixture
def lists(tmp_path: Path) -> dict[str, Any]:
    return two_versions(tmp_path)


@pytest.fixture
def fleet(tmp_path: Path, mosquitto: Mosquitto):  # type: ignore[no-untyped-def]
    private_key, public_key, _, pub_path = make_keys(tmp_path)
    devices = {
        name: Device(
            name,
            device_config(tmp_path / f"{name}.yaml", name, mosquitto.port, pub_path),
            tmp_path / f"state-{name}",
            tmp_path,
        )
        for name in ("cam-a", "cam-b")
    }
    watcher = Watcher(mosquitto.port)
    try:
        yield private_key, public_key, pub_path, devices, watcher
    finally:
        watcher.close()
        for device in devices.values():
            device.kill()


def _both_on(watcher: Watcher, devices: dict[str, Device], version: int, timeout_s: float) -> None:
    for name, device in devices.items():
        ok = watcher.wait(lambda n=name: watcher.reported_version(n) == str(version), timeout_s)
        assert ok, (
            f"{name} reports {watcher.status(name)}; sync {watcher.sync(name)}\n{device.log()}"
        )
        assert device.installed_version() == version


def test_new_list_reaches_an_online_and_an_offline_device(
    fleet, tmp_path: Path, mosquitto: Mosquitto, capsys: pytest.CaptureFixture[str]
) -> None:
    private_key, public_key, pub_path, devices, watcher = fleet
    team = people(1, 40, templates=2)
    v1 = tmp_path / "lists" / "v1"
    full_bundle(v1, team, private_key, version=1)
    _publish(capsys, mosquitto.port, v1, pubkey=pub_path)

    for device in devices.values():
        device.start()
    # Both were offline when v1 was announced: they find it retained when they connect.
    _both_on(watcher, devices, 1, 30)

    cam_a, cam_b = devices["cam-a"], devices["cam-b"]
    assert cam_b.stop() == 0
    assert watcher.wait(lambda: watcher.status("cam-b").get("state") == "offline", SHOULD_HAPPEN_S)

    v2_full, v2_delta = next_bundles(
        v1,
        [*team, *people(2, 5, templates=2, prefix="new")],
        private_key,
        public_key,
        2,
        tmp_path / "lists",
    )
    started = time.monotonic()
    published = _publish(capsys, mosquitto.port, v2_full, v2_delta, pubkey=pub_path)
    assert {t["kind"] for t in published["transfers"]} == {"full", "delta"}
    assert published["previous_version"] == 1 and published["cleared_chunks"] > 0
    _both_on(watcher, {"cam-a": cam_a}, 2, 30)
    online_s = time.monotonic() - started
    assert watcher.reported_version("cam-b") is None  # still offline, still on v1 on disk
    assert cam_b.installed_version() == 1

    cam_b.start()
    restarted = time.monotonic()
    _both_on(watcher, devices, 2, 30)
    catch_up_s = time.monotonic() - restarted
    # Both held v1, the delta's base: they fetched the delta, not the full bundle.
    delta_sha = next(t["sha256"] for t in published["transfers"] if t["kind"] == "delta")
    for name, device in devices.items():
        assert watcher.wait(
            lambda n=name: watcher.sync(n).get("installed") == {"id": LIST_ID, "version": 2}, 10
        ), watcher.sync(name)
        assert watcher.sync(name)["lists"][LIST_ID]["state"] == "current"
        assert f"fetching the delta transfer {delta_sha[:12]}" in device.log(), device.log()

    code = main(["hub", "devices", "--broker", f"127.0.0.1:{mosquitto.port}", "--json"])
    rows = {r["device_id"]: r for r in json.loads(capsys.readouterr().out)}
    assert code == 0
    for name in devices:
        assert rows[name]["state"] == "online"
        assert rows[name]["status"]["watchlist"] == {"id": LIST_ID, "version": "2"}
        assert rows[name]["sync"]["installed"]["version"] == 2
        assert rows[name]["heartbeat"] is not None and rows[name]["heartbeat_age_s"] < 30

    main(["hub", "devices", "--broker", f"127.0.0.1:{mosquitto.port}"])
    table = capsys.readouterr().out
    assert "cam-a" in table and "gate v2" in table and "2 device(s), 2 online" in table

    for device in devices.values():
        assert device.stop() == 0
    print(
        f"\nv2 reached the online device in {online_s:.2f}s; the offline one {catch_up_s:.2f}s "
        "after it restarted"
    )


def test_bad_chunk_and_wrong_signature_leave_the_previous_list(
    fleet, tmp_path: Path, mosquitto: Mosquitto, capsys: pytest.CaptureFixture[str]
) -> None:
    private_key, public_key, pub_path, devices, watcher = fleet
    team = people(3, 30, templates=2)
    v1 = tmp_path / "lists" / "v1"
    full_bundle(v1, team, private_key, version=1)
    _publish(capsys, mosquitto.port, v1, pubkey=pub_path)
    for device in devices.values():
        device.start()
    _both_on(watcher, devices, 1, 30)

    # v2 with one chunk altered on the broker: every device refuses it, keeps v1.
    v2 = tmp_path / "lists" / "v2"
    full_bundle(v2, [*team, *people(4, 3, prefix="extra")], private_key, version=2)
    config_for = device_config(tmp_path / "hub.yaml", "hub", mosquitto.port, pub_path)
    hub_config = load_config(config_for)
    announcement, archives = prepare([v2], CHUNK)
    damaged = bytearray(archives[0])
    damaged[3 * CHUNK + 100] ^= 0x01
    publish_prepared(hub_config, announcement, [bytes(damaged)])
    for name in devices:
        assert watcher.wait(
            lambda n=name: (
                watcher.sync(n).get("lists", {}).get(LIST_ID, {}).get("state") == "failed"
            ),
            30,
        ), watcher.sync(name)
        assert "chunk 3 failed its sha256 check" in watcher.sync(name)["lists"][LIST_ID]["detail"]
        assert watcher.sync(name)["counters"]["chunks_refused"] >= 3
        assert watcher.reported_version(name) == "1"
        assert devices[name].installed_version() == 1

    # v3 signed by a key the devices do not trust: refused before a chunk is fetched.
    rogue_private, *_ = make_keys(tmp_path / "rogue")
    v3 = tmp_path / "lists" / "v3"
    full_bundle(v3, team, rogue_private, version=3)
    announcement, archives = prepare([v3], CHUNK)
    publish_prepared(hub_config, announcement, archives)
    for name in devices:
        assert watcher.wait(
            lambda n=name: "signature" in watcher.sync(n)["lists"][LIST_ID].get("detail", ""),
            30,
        ), watcher.sync(name)
        assert watcher.sync(name)["lists"][LIST_ID]["state"] == "refused"
        assert watcher.reported_version(name) == "1"
        assert devices[name].installed_version() == 1
    assert keyring.key_id(public_key) not in announcement.transfers[0].manifest_bytes.decode()

    # A good v4 afterwards is installed everywhere: a refusal does not wedge the device.
    v4 = tmp_path / "lists" / "v4"
    full_bundle(v4, team, private_key, version=4)
    _publish(capsys, mosquitto.port, v4, pubkey=pub_path)
    _both_on(watcher, devices, 4, 30)
    for device in devices.values():
        assert device.stop() == 0
        assert "refused" in device.log()


def test_hub_refuses_an_older_version_and_withdraw_clears_the_topics(
    tmp_path: Path, mosquitto: Mosquitto, capsys: pytest.CaptureFixture[str]
) -> None:
    private_key, _, _, pub_path = make_keys(tmp_path)
    v5 = tmp_path / "v5"
    v4 = tmp_path / "v4"
    full_bundle(v5, people(5, 3), private_key, version=5)
    full_bundle(v4, people(5, 3), private_key, version=4)
    broker = ["--broker", f"127.0.0.1:{mosquitto.port}"]
    _publish(capsys, mosquitto.port, v5, pubkey=pub_path)
    assert main(["hub", "publish", str(v4), *broker]) == 2
    assert "already announces gate version 5" in capsys.readouterr().err
    assert main(["hub", "withdraw", LIST_ID, *broker]) == 0
    assert "withdrew gate" in capsys.readouterr().out
    config = load_config(device_config(tmp_path / "c.yaml", "x", mosquitto.port, pub_path))
    client = tool_client(config.mqtt, "test")
    connect_and_wait(client, config.mqtt)
    try:
        assert read_retained(client, ListTopics("edge/v1", LIST_ID).manifest, 0.5) is None
    finally:
        client.disconnect()
        client.loop_stop()


def test_interrupted_transfer_resumes_after_device_and_broker_restarts(
    lists: dict[str, Any],
    tmp_path: Path,
    persistent_mosquitto: Mosquitto,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="edge.fleet.sync")
    broker = persistent_mosquitto
    config = load_config(
        device_config(
            tmp_path / "cam.yaml",
            "cam-r",
            broker.port,
            lists["pub_path"],
            chunk_timeout_s=0.3,
            chunk_retries=100,
        )
    )
    announcement, archives = prepare([lists["v1"]], 1024)
    info, data = announcement.transfers[0], archives[0]
    withheld = 2
    topics = ListTopics(config.mqtt.topic_prefix, LIST_ID)

    def put(messages: list[tuple[str, bytes]]) -> None:
        client = tool_client(config.mqtt, "test-hub")
        connect_and_wait(client, config.mqtt)
        try:
            for topic, payload in messages:
                client.publish(topic, payload, 1, True).wait_for_publish(10)
        finally:
            client.disconnect()
            client.loop_stop()

    def chunk(n: int) -> tuple[str, bytes]:
        offset, length = info.chunk_span(n)
        return topics.chunk(info.sha256, n), data[offset : offset + length]

    total = len(info.chunks)
    put(
        [chunk(n) for n in range(total) if n != withheld]
        + [(topics.manifest, announcement.to_bytes())]
    )

    state = tmp_path / "state"
    first = WatchlistSync(config, open_store(config, state_dir=state), state)
    first.start()
    try:
        deadline = time.monotonic() + 20
        while first.counters.chunks_received < total - 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert first.counters.chunks_received == total - 1
        time.sleep(0.5)
        assert first.counters.chunk_timeouts >= 1 and first.installed is None
    finally:
        first.stop()  # the device goes down mid-transfer ...
    broker.restart()  # ... and so does the broker (it keeps retained messages on disk)

    second = WatchlistSync(config, open_store(config, state_dir=state), state)
    second.start()
    try:
        assert second.wait_connected(SHOULD_HAPPEN_S)
        deadline = time.monotonic() + 10
        while "resuming" not in caplog.text and time.monotonic() < deadline:
            time.sleep(0.05)
        assert f"({total - 1} of {total} chunks already here)" in caplog.text
        broker.restart()  # the link drops again while the device waits for the last chunk
        put([chunk(withheld)])
        deadline = time.monotonic() + 20
        while second.installed is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert second.installed is not None and second.installed.version == 1
        assert second.counters.chunks_received == 1  # only the chunk it lacked
        assert second.counters.connections >= 2
    finally:
        second.stop()
    assert not any((state / "sync" / LIST_ID).iterdir())  # nothing left behind
