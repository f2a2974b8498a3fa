"""Fixtures shared by every test, and the ``external`` marker that makes the quick check.

A test is ``external`` when it needs something outside this Python process and its temp folder:
a Mosquitto broker, a PostgreSQL server, a browser, an RTSP server, qemu, or the real models on
many images (``slow``). ``python -m pytest -m "not external"`` is the quick check (README);
the full suite, README's test command, runs them all.

The marker is not written on the tests: it is derived here, at collection, so that a new test
taking the ``mosquitto`` fixture is external without anyone remembering to say so. A test is
external when it, or any fixture it uses (directly or through other fixtures), takes one of
``EXTERNAL_FIXTURES`` as an argument or asks for one with ``request.getfixturevalue``, or
imports a browser driver; when it sits in one of ``EXTERNAL_MODULES``; or when it is ``slow``.
What the rule misses is caught when the test runs: a test not marked external that starts one
of ``EXTERNAL_PROGRAMS`` fails, naming the program (see :func:`_refuse_external_programs`).
"""

from __future__ import annotations

import ast
import contextlib
import functools
import inspect
import os
import sys
import textwrap
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytest_plugins = ["mqtt_fixtures", "pg_fixtures"]

# The fixtures that start a broker or a database (tests/mqtt_fixtures.py, tests/pg_fixtures.py).
EXTERNAL_FIXTURES = frozenset(
    {"mosquitto", "persistent_mosquitto", "broker_factory", "postgres_server", "postgres_url"}
)
# Modules whose every test starts a program of its own rather than through a shared fixture.
EXTERNAL_MODULES = {
    "test_rtsp_stream.py": "a GStreamer RTSP server (tests/rtsp_server.py)",
    "test_int8_without_vnni.py": "qemu-x86_64-static",
    "test_dispatch_browser.py": "chromium, through Playwright",
    "test_fetch_models.py": "the package registries (npm, PyPI), over the network",
    # the real models on many images: whole clips, run again and again
    "test_bench_far.py": "the models over generated walking clips and LFW",
    "test_run_privacy.py": "edge run over the demo clip, once per privacy setting",
    "test_multiscale.py": "the models over the demo clip at several scales",
    "test_run_stream.py": "edge run over a live MJPEG stream of the demo",
}
# The shared data sets (../shared/data: LFW, the Hamilton clip): a test naming one of these runs
# the models over hundreds of images.
DATA_SET_NAMES = frozenset(
    {"require_lfw", "LFW_DIR", "LFW", "lfw_people", "require_hamilton", "HAMILTON"}
)
BROWSER_DRIVERS = ("playwright",)
# Program names (or a leading part of them) that only an external test may start.
EXTERNAL_PROGRAMS = (
    "mosquitto",
    "initdb",
    "pg_ctl",
    "postgres",
    "chromium",
    "qemu-",
    "rtsp_server.py",
    "playwright",
)


@functools.cache
def _source_tree(function: Callable[..., Any]) -> ast.AST | None:
    try:
        return ast.parse(textwrap.dedent(inspect.getsource(function)))
    except (OSError, TypeError, SyntaxError):  # built-in fixtures have no source to read
        return None


def _reaches_outside(function: Callable[..., Any]) -> bool:
    """Whether the function reads a shared data set, asks for an external fixture by name at
    run time, or imports a browser driver (``pytest.importorskip("playwright...")``)."""
    tree = _source_tree(function)
    if tree is None:
        return False
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id in DATA_SET_NAMES:
            return True
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]
            if any((name or "").split(".")[0] in BROWSER_DRIVERS for name in names):
                return True
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        first = node.args[0] if node.args else None
        text = first.value if isinstance(first, ast.Constant) else None
        if not isinstance(text, str):
            continue
        if node.func.attr == "getfixturevalue" and text in EXTERNAL_FIXTURES:
            return True
        if node.func.attr == "importorskip" and text.split(".")[0] in BROWSER_DRIVERS:
            return True
    return False


def _functions(item: pytest.Item) -> Iterable[Callable[..., Any]]:
    """The test function and every fixture function it uses, however indirectly."""
    function = getattr(item, "function", None)
    if function is not None:
        yield function
    info = getattr(item, "_fixtureinfo", None)
    for definitions in info.name2fixturedefs.values() if info is not None else ():
        for definition in definitions:
            yield definition.func


def external_reason(item: pytest.Item) -> str | None:
    """Why the test is external, or None when it runs in the quick check."""
    if item.get_closest_marker("slow") is not None:
        return "slow: the real models on many images"
    if item.path.name in EXTERNAL_MODULES:
        return EXTERNAL_MODULES[item.path.name]
    used = EXTERNAL_FIXTURES.intersection(getattr(item, "fixturenames", ()))
    if used:
        return f"uses {', '.join(sorted(used))}"
    if any(_reaches_outside(function) for function in _functions(item)):
        return "reads a data set, asks for a broker or database at run time, or drives a browser"
    return None


@pytest.hookimpl(tryfirst=True)  # before -m deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if external_reason(item) is not None:
            item.add_marker(pytest.mark.external)


# --- the check at run time ----------------------------------------------------------------------

_running: list[pytest.Item] = []  # the test now being set up or run
_started: dict[str, list[str]] = {}  # nodeid -> programs a test not marked external started


def _external_program(command: list[object]) -> str | None:
    """The external program a command line starts, if any: the program itself, or one it runs
    (``runuser ... /usr/lib/postgresql/15/bin/initdb``, ``python3 tests/rtsp_server.py``).
    Other arguments (a config file named postgres.yaml) are not programs."""
    for position, argument in enumerate(command):
        path = Path(str(argument))
        runs = position == 0 or path.suffix == ".py" or (path.is_absolute() and _executable(path))
        if not runs:
            continue
        if any(path.name.startswith(program) for program in EXTERNAL_PROGRAMS):
            return path.name
        if "playwright" in path.parts:  # Playwright's driver, which starts the browser
            return "playwright"
    return None


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def _refuse_external_programs(event: str, arguments: tuple[Any, ...]) -> None:
    """An audit hook (sys.addaudithook): a test not marked external may not start a broker,
    database, browser, RTSP server or qemu; the start is refused and the test fails."""
    if event != "subprocess.Popen" or not _running:
        return
    item = _running[-1]
    if item.get_closest_marker("external") is not None:
        return
    executable, args = arguments[0], arguments[1]
    command = [executable, *args] if isinstance(args, list | tuple) else [executable, args]
    program = _external_program([a for a in command if a is not None])
    if program is None:
        return
    _started.setdefault(item.nodeid, []).append(program)
    raise RuntimeError(
        f"{item.nodeid} starts {program} but is not marked external: extend the rule in "
        "tests/conftest.py (EXTERNAL_FIXTURES or EXTERNAL_MODULES)"
    )


sys.addaudithook(_refuse_external_programs)


@contextlib.contextmanager
def _watched(item: pytest.Item) -> Iterator[None]:
    _running.append(item)
    try:
        yield
    finally:
        _running.pop()


# Setting up and running a test are watched; tearing down is not: the last test of the session
# stops the session's database (pg_ctl stop), whichever test that is.
@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    with _watched(item):
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    with _watched(item):
        return (yield)


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item: pytest.Item) -> None:
    # Also when the refusal was caught and turned into a skip or a pass.
    started = _started.pop(item.nodeid, None)
    if started:
        pytest.fail(
            f"started {', '.join(sorted(set(started)))} but is not marked external "
            "(tests/conftest.py)",
            pytrace=False,
        )
