"""README's command lines, run as written.

The code blocks and `edge ...` code spans of "Two commands" and "Dispatch quick start" are
parsed out of README.md and run, in order, as a fresh machine would (``python -m edge`` for
``edge``; its own HOME, state directory and working directory). Only what README names as the
reader's own is substituted: SRC (the demo clip), BUNDLE and DIR (a list signed by a hub key made
here, and its photos), the optional ``[--config FILE]`` (left out), and the broker's and the
console's addresses (free ports). The "Measured" table's commands are checked against the
command-line parser (they run for minutes, on data outside the repository).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from mqtt_fixtures import Mosquitto, free_port
from paths import REPO

from edge.cli import build_parser
from edge.demo import DEMO_CLIP, DEMO_DIR

README = REPO / "README.md"
PASSWORD = "correct horse battery"


def _sections() -> dict[str, str]:
    text = README.read_text(encoding="utf-8")
    parts = re.split(r"^## (.+)$", text, flags=re.M)
    return {title.strip(): body for title, body in zip(parts[1::2], parts[2::2], strict=True)}


def _edge_commands(section: str) -> list[str]:
    """Every `edge ...` command line of a section: code block lines (each `&&` part, comments
    dropped) and code spans, in the order they appear."""
    found: list[tuple[int, str]] = []
    for block in re.finditer(r"```sh\n(.*?)```", section, re.S):
        for line in block.group(1).splitlines():
            for part in " ".join(shlex.split(line, comments=True)).split("&&"):
                if part.strip().startswith("edge "):
                    found.append((block.start(), part.strip()))
    prose = re.sub(r"```.*?```", lambda m: " " * len(m.group(0)), section, flags=re.S)
    for span in re.finditer(r"`([^`]+)`", prose):
        text = " ".join(span.group(1).split())
        if text.startswith("edge "):
            found.append((span.start(), text))
    return [text for _, text in sorted(found, key=lambda item: item[0])]


def test_the_commands_readme_shows_are_the_ones_run_here() -> None:
    sections = _sections()
    assert _edge_commands(sections["Two commands"]) == [
        "edge run",
        "edge keys trust watchlist-signing.pub",
        "edge run --source SRC --watchlist BUNDLE [--config FILE]",
        "edge compare edge/samples/Colin_Powell_0001.jpg edge/samples/Colin_Powell_0002.jpg",
    ]
    assert _edge_commands(sections["Dispatch quick start"]) == [
        "edge dispatch users add alice --role supervisor",
        "edge dispatch serve --broker 127.0.0.1:1883 --listen 127.0.0.1:8080",
        "edge alerts test --broker 127.0.0.1:1883",
        "edge dispatch import-list BUNDLE --photos DIR",
    ]


def test_the_measured_commands_parse() -> None:
    commands = _edge_commands(_sections()["Measured on this project's 2-core x86 machine"])
    assert len(commands) >= 9
    parser = build_parser()
    for command in commands:
        argv = shlex.split(command)[1:]
        try:
            parser.parse_args(argv)
        except SystemExit as exc:  # argparse's way of refusing
            pytest.fail(f"README: `{command}` does not parse ({exc})")
        for word in argv:  # the repository's own files exist
            if word.startswith("edge/"):
                assert (REPO / word).exists(), f"README: `{command}` names a missing {word}"


class Machine:
    """A fresh machine: its own HOME and state directory, ``edge`` as ``python -m edge``."""

    def __init__(self, root: Path, substitutions: dict[str, str]) -> None:
        self.cwd = root / "work"
        self.cwd.mkdir()
        (self.cwd / "edge").symlink_to(REPO / "edge")  # README's relative paths: edge/samples/...
        self.state = root / "state"
        self.env = {
            k: v
            for k, v in os.environ.items()
            if k not in {"EDGE_STATE_DIR", "CREDENTIALS_DIRECTORY", "NOTIFY_SOCKET"}
        }
        self.env.update(
            PYTHONPATH=str(REPO),
            HOME=str(root / "home"),
            XDG_STATE_HOME=str(root / "home" / ".local" / "state"),
            EDGE_STATE_DIR=str(self.state),
        )
        self.substitutions = substitutions

    def argv(self, command: str) -> list[str]:
        command = command.replace(" [--config FILE]", "")
        for placeholder, value in self.substitutions.items():
            command = re.sub(rf"(?<![\w/.-]){re.escape(placeholder)}(?![\w/-])", value, command)
        words = shlex.split(command)
        assert words[0] == "edge"
        return [sys.executable, "-m", "edge", *words[1:]]

    def run(
        self, command: str, *, stdin: str = "", state_env: bool = True
    ) -> subprocess.CompletedProcess[str]:
        env = dict(self.env)
        if not state_env:
            env.pop("EDGE_STATE_DIR")
        done = subprocess.run(
            self.argv(command),
            cwd=self.cwd,
            env=env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, f"`{command}` exited {done.returncode}: {done.stderr}"
        return done


def test_readme_commands_work_as_written(tmp_path: Path, mosquitto: Mosquitto) -> None:
    sections = _sections()
    first_use = _edge_commands(sections["Two commands"])
    dispatch = _edge_commands(sections["Dispatch quick start"])
    web_port = free_port()
    photos = tmp_path / "photos"
    (photos / "Lin-Manuel Miranda").mkdir(parents=True)
    shutil.copy(DEMO_DIR / "lin-manuel-miranda.png", photos / "Lin-Manuel Miranda" / "a.png")
    bundle = tmp_path / "lists" / "gate-v1"
    machine = Machine(
        tmp_path,
        {
            "SRC": str(DEMO_CLIP),
            "BUNDLE": str(bundle),
            "DIR": str(photos),
            "127.0.0.1:1883": f"127.0.0.1:{mosquitto.port}",
            "127.0.0.1:8080": f"127.0.0.1:{web_port}",
        },
    )
    # The hub's side, which README leaves to docs/watchlist.md: a key and a list signed with it.
    machine.run("edge keys generate --out .")
    key = machine.cwd / "watchlist-signing.key"
    machine.run(f"edge watchlist build --photos DIR --key {key} --out BUNDLE --list-id gate")

    # Two commands: the demo, then real use with the hub's key trusted once.
    demo, trust, real_use, compare = first_use
    out = machine.run(demo, state_env=False).stdout  # the demo keeps to its own folder
    assert "ALERT (test)" in out and "Lin-Manuel Miranda" in out
    assert "trusted key " in machine.run(trust).stdout
    out = machine.run(real_use).stdout
    alerts = [line for line in out.splitlines() if line.startswith("ALERT ")]
    assert len(alerts) == 1 and "Lin-Manuel Miranda" in alerts[0], out
    assert "same person" in machine.run(compare).stdout.lower()

    # Dispatch quick start, against a real broker.
    add, serve, send, import_list = dispatch
    assert "added supervisor alice" in machine.run(add, stdin=PASSWORD + "\n").stdout
    server = subprocess.Popen(
        machine.argv(serve),
        cwd=machine.cwd,
        env=machine.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, server.communicate()[1]
            try:
                httpx.get(f"http://127.0.0.1:{web_port}/", timeout=1)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "edge dispatch serve did not answer"
                time.sleep(0.2)
        machine.run(send)  # exits 0 only once dispatch has stored (acknowledged) it
        assert "imported gate v" in machine.run(import_list).stdout
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
    assert server.returncode == 0, server.communicate()[1]
