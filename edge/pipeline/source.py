"""Naming a video source: :func:`parse_source` tells a file, a folder of stills, a camera and a
stream apart, and :func:`redact_url` keeps a stream's credentials out of every log line."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from edge.errors import SourceError

SourceKind = Literal["file", "folder", "camera", "stream"]
STREAM_SCHEMES = frozenset({"rtsp", "rtsps", "rtmp", "http", "https"})


def redact_url(url: str) -> str:
    """``url`` with any user name and password replaced by ``***`` (safe to log)."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"***@{host}"))


@dataclass(frozen=True)
class SourceSpec:
    """A parsed ``--source``: what kind of source, and the path, device or URL to open."""

    kind: SourceKind
    target: str

    @property
    def live(self) -> bool:
        """Cameras and streams run on their own clock: frames not taken in time are lost."""
        return self.kind in ("camera", "stream")

    @property
    def name(self) -> str:
        """How the source is named in logs and messages (credentials redacted)."""
        return redact_url(self.target) if self.kind == "stream" else self.target


def parse_source(text: str) -> SourceSpec:
    """Recognise a source: a camera index or /dev path, a stream URL, a video file or a folder.

    Raises :class:`SourceError` for something that names nothing usable; whether a live source
    can actually be opened is only known when :class:`Capture` tries."""
    value = text.strip()
    if not value:
        raise SourceError("the video source is empty")
    if value.isdigit():
        return SourceSpec("camera", value)
    if value.startswith("/dev/"):
        if not Path(value).exists():
            raise SourceError(f"{value}: no such camera device")
        return SourceSpec("camera", value)
    if "://" in value:
        scheme = value.split("://", 1)[0].lower()
        if scheme == "file":
            return parse_source(urlsplit(value).path)
        if scheme not in STREAM_SCHEMES:
            raise SourceError(
                f"{redact_url(value)}: unsupported stream scheme {scheme!r} (use "
                f"{', '.join(sorted(STREAM_SCHEMES))})"
            )
        return SourceSpec("stream", value)
    path = Path(value)
    if path.is_dir():
        return SourceSpec("folder", value)
    if path.is_file():
        return SourceSpec("file", value)
    raise SourceError(f"{value}: no such file, folder or camera")
