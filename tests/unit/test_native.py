"""The native-stderr silencer: what a C library prints on descriptor 2 is dropped, or filtered."""

from __future__ import annotations

import os
import re
import sys

import pytest

from edge.system.native import native_stderr_silenced

NOTICE = b"OpenCV: FFMPEG: tag 0x30385056/'VP80' is not supported with codec id 139 and format "


def test_everything_is_dropped_without_a_pattern(capfd: pytest.CaptureFixture[str]) -> None:
    with native_stderr_silenced():
        os.write(2, b"Created TensorFlow Lite XNNPACK delegate for CPU.\n")
    print("after", file=sys.stderr)
    assert capfd.readouterr().err == "after\n"


def test_only_the_matching_lines_are_dropped(capfd: pytest.CaptureFixture[str]) -> None:
    with native_stderr_silenced(only=re.compile(rb"^OpenCV: FFMPEG: tag ")):
        os.write(2, NOTICE + b"'webm / WebM'\n")
        os.write(2, b"[libvpx] a real encoder error\n")
        os.write(2, b"a log line of another thread\n")
    err = capfd.readouterr().err
    assert "FFMPEG" not in err
    assert err == "[libvpx] a real encoder error\na log line of another thread\n"


def test_what_the_block_raises_still_restores_stderr(capfd: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ValueError), native_stderr_silenced(only=re.compile(rb"^x")):
        os.write(2, b"kept\n")
        raise ValueError("boom")
    os.write(2, b"restored\n")
    assert capfd.readouterr().err == "kept\nrestored\n"
