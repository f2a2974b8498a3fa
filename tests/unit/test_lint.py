"""ruff and mypy (strict for edge/) are part of the test suite."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
from paths import REPO


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True)


@pytest.mark.skipif(
    shutil.which("ruff") is None, reason="ruff not installed (pip install '.[test]')"
)
def test_ruff() -> None:
    result = _run("ruff", "check", "edge", "tests", "scripts")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict() -> None:
    result = _run(sys.executable, "-m", "mypy")
    assert result.returncode == 0, result.stdout + result.stderr
