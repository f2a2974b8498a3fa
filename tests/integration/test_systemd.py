"""The systemd units: `systemd-analyze verify` passes for each, with the hardening the product
promises; and the sd_notify helper speaks the protocol to a real datagram socket."""

from __future__ import annotations

import configparser
import os
import shutil
import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest
from paths import REPO

from edge.system.sdnotify import Notifier

UNITS = sorted((REPO / "systemd").glob("*.service"))
SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
SYSTEM_UNITS = Path("/usr/lib/systemd/system")
EXECUTABLE = "/opt/edge/venv/bin/edge"


def _unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """section -> key -> every value (systemd keys repeat)."""
    parser = configparser.RawConfigParser(strict=False, delimiters=("=",), interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        key, _, value = line.partition("=")
        assert current is not None
        current.setdefault(key, []).append(value)
    return sections


def _root(tmp_path: Path) -> Path:
    """A root holding the distribution's units, ours, and a stand-in for the edge executable
    (verify checks that ExecStart= names an executable)."""
    root = tmp_path / "root"
    shutil.copytree(SYSTEM_UNITS, root / "usr/lib/systemd/system", symlinks=True)
    stub = root / EXECUTABLE.lstrip("/")
    stub.parent.mkdir(parents=True)
    stub.write_text("#!/bin/sh\nexit 0\n")
    stub.chmod(0o755)
    (root / "etc/systemd/system").mkdir(parents=True)
    for unit in UNITS:
        shutil.copy(unit, root / "etc/systemd/system" / unit.name)
    return root


def test_there_are_units() -> None:
    assert {u.name for u in UNITS} == {"edge.service", "edge-sync.service"}


@pytest.mark.skipif(
    SYSTEMD_ANALYZE is None, reason="systemd-analyze is not installed (apt: systemd)"
)
@pytest.mark.skipif(
    not SYSTEM_UNITS.is_dir(), reason="no /usr/lib/systemd/system to verify against"
)
@pytest.mark.parametrize("unit", UNITS, ids=lambda u: u.name)
def test_systemd_analyze_verify_passes(unit: Path, tmp_path: Path) -> None:
    assert SYSTEMD_ANALYZE is not None
    root = _root(tmp_path)
    result = subprocess.run(
        [SYSTEMD_ANALYZE, "verify", "--man=no", f"--root={root}", unit.name],
        capture_output=True,
        text=True,
        timeout=60,
    )
    # Unknown keys or bad values are only warnings for verify: any output is a failure here.
    assert result.returncode == 0 and not result.stdout.strip() and not result.stderr.strip(), (
        result.stdout + result.stderr
    )
    security = subprocess.run(
        [SYSTEMD_ANALYZE, "security", "--offline=true", f"--root={root}", unit.name],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert security.returncode == 0, security.stdout + security.stderr
    level = float(
        security.stdout.rsplit("Overall exposure level for", 1)[1].split(":")[1].split()[0]
    )
    assert level <= 2.0, security.stdout  # systemd calls below 2 "OK"


@pytest.mark.parametrize("unit", UNITS, ids=lambda u: u.name)
def test_units_restart_feed_a_watchdog_and_are_hardened(unit: Path) -> None:
    service = _unit(unit)["Service"]
    one = {key: values[-1] for key, values in service.items()}
    assert one["Type"] == "notify" and one["Restart"] == "on-failure"
    assert int(one["WatchdogSec"].rstrip("s")) >= 10
    assert one["User"] == "edge" and one["NoNewPrivileges"] == "yes"
    assert one["ProtectSystem"] == "strict" and one["PrivateTmp"] == "yes"
    assert service["ReadWritePaths"] == ["/var/lib/edge"]
    assert one["CapabilityBoundingSet"] == ""
    credentials = {v.split(":")[0] for v in service["LoadCredential"]}
    assert "mqtt_password" in credentials
    assert one["ExecStart"].startswith(EXECUTABLE + " ")
    if unit.name == "edge.service":
        assert one["DevicePolicy"] == "closed"
        assert service["DeviceAllow"] == ["char-video4linux rw"]
        assert "video" in one["SupplementaryGroups"].split()
    else:
        assert one["PrivateDevices"] == "yes" and "api_token" in credentials


def test_sd_notify_sends_ready_and_paced_watchdog_pings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "notify.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(str(path))
    server.settimeout(2)
    try:
        monkeypatch.setenv("NOTIFY_SOCKET", str(path))
        monkeypatch.setenv("WATCHDOG_USEC", "2000000")
        monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
        notifier = Notifier.from_environment()
        assert notifier.enabled and notifier.interval_s == 2.0
        assert notifier.ready("syncing")
        assert server.recv(4096) == b"READY=1\nSTATUS=syncing"
        assert notifier.watchdog()
        assert server.recv(4096) == b"WATCHDOG=1"
        assert not notifier.watchdog()  # within half the period: not again
        assert notifier.stopping()
        assert server.recv(4096) == b"STOPPING=1"
    finally:
        server.close()
    monkeypatch.delenv("NOTIFY_SOCKET")
    quiet = Notifier.from_environment()
    assert not quiet.enabled and not quiet.ready() and not quiet.watchdog(force=True)


def test_edge_sync_reports_ready_and_feeds_the_watchdog_from_its_main_loop(
    tmp_path: Path, mosquitto: Any
) -> None:
    """`edge sync` under a notify socket, as systemd runs it (Type=notify, WatchdogSec=)."""
    import sys

    import yaml
    from watchlist_helpers import make_keys

    _, _, _, pub = make_keys(tmp_path)
    config = tmp_path / "edge.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "device": {"id": "cam-sd"},
                "mqtt": {"host": "127.0.0.1", "port": mosquitto.port},
                "watchlist": {"public_key": str(pub)},
                "sync": {"lists": ["gate"]},
                "api": {"enabled": False},
            }
        )
    )
    path = tmp_path / "notify.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(str(path))
    server.settimeout(20)
    env = dict(os.environ, NOTIFY_SOCKET=str(path), WATCHDOG_USEC="400000")
    env.pop("WATCHDOG_PID", None)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "edge",
            "sync",
            "--config",
            str(config),
            "--state-dir",
            str(tmp_path / "state"),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        messages = [server.recv(4096).decode()]
        assert messages[0].startswith("READY=1\nSTATUS=following gate"), messages
        for _ in range(3):  # paced at half the 0.4 s period
            messages.append(server.recv(4096).decode())
        assert messages[1:] == ["WATCHDOG=1"] * 3
        process.terminate()
        assert process.wait(timeout=20) == 0
        assert server.recv(4096) == b"STOPPING=1"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        server.close()
