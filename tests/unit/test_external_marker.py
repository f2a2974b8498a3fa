"""The rule that keeps the quick check (``-m "not external"``) free of brokers, databases,
browsers, RTSP servers and qemu: derived in tests/conftest.py, enforced when a test runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import conftest
import pytest


@pytest.mark.parametrize(
    ("command", "program"),
    [
        (["/usr/sbin/mosquitto", "-c", "mosquitto.conf"], "mosquitto"),
        (["mosquitto_passwd", "-b", "passwd", "u", "p"], "mosquitto_passwd"),
        (["runuser", "-u", "postgres", "--", "/bin/true", "-D", "data"], None),
        (["/usr/bin/python3", "tests/rtsp_server.py", "8554", "frames"], "rtsp_server.py"),
        (["qemu-x86_64-static", "-cpu", "Haswell", sys.executable], "qemu-x86_64-static"),
        (["/venv/lib/python3.11/site-packages/playwright/driver/node", "cli.js"], "playwright"),
        ([sys.executable, "-m", "edge", "config", "check", "/tmp/postgres.yaml"], None),
    ],
)
def test_external_programs_are_named_by_what_runs(command: list[object], program: str) -> None:
    assert conftest._external_program(command) == program


def test_an_unmarked_test_may_not_start_a_broker(request: pytest.FixtureRequest) -> None:
    assert request.node.get_closest_marker("external") is None
    with pytest.raises(RuntimeError, match="not marked external"):
        subprocess.run(["mosquitto", "-h"], capture_output=True)
    # Seen, so teardown would fail this test too: forget it, the refusal was the point here.
    assert conftest._started.pop(request.node.nodeid) == ["mosquitto"]


class _Item:
    """What external_reason reads of a collected test."""

    def __init__(
        self, function: object, *fixtures: str, marker: str = "", module: str = ""
    ) -> None:
        self.function = function
        self.fixturenames = ["request", *fixtures]
        self.path = Path(module or "tests/unit/test_x.py")
        self._fixtureinfo = None
        self.marker = marker

    def get_closest_marker(self, name: str) -> object:
        return name if name == self.marker else None


def _plain() -> None:
    pass


def _asks_for_a_database(request: pytest.FixtureRequest) -> None:
    if request.param == "postgresql":
        request.getfixturevalue("postgres_url")


def _drives_a_browser() -> None:
    pytest.importorskip("playwright.sync_api")


@pytest.mark.parametrize(
    ("item", "external"),
    [
        (_Item(_plain), False),
        (_Item(_plain, "tmp_path", "capsys"), False),
        (_Item(_plain, "mosquitto"), True),
        (_Item(_plain, "postgres_server"), True),
        (_Item(_asks_for_a_database), True),
        (_Item(_drives_a_browser), True),
        (_Item(_plain, marker="slow"), True),
        (_Item(_plain, module="tests/integration/test_int8_without_vnni.py"), True),
    ],
)
def test_what_makes_a_test_external(item: _Item, external: bool) -> None:
    assert (conftest.external_reason(item) is not None) == external  # type: ignore[arg-type]
