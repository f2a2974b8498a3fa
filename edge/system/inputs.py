"""Untrusted input, bounded: files read whole, and JSON.

:func:`read_bounded` reads a file that must be a regular file of at most ``limit`` bytes: a
FIFO (which would block for ever), a device (``/dev/zero`` never ends), a directory or a socket
is refused before it is read, and the size is capped before anything is allocated. Every
problem is one line naming the file, raised as the caller's own error class.

:func:`load_json` parses JSON that may come from anywhere (MQTT, a file another process wrote)
and refuses documents nested deeper than :data:`MAX_JSON_DEPTH`, which would otherwise end in a
RecursionError in the parser or in whatever walks the document next. Its errors are
``ValueError`` (as the json module's own are), which callers translate where the input enters.

:func:`load_yaml` does the same for YAML (config files), and also bounds what aliases expand to:
a few hundred bytes of ``&a [*b, *b, ...]`` would otherwise build a document of billions of
nodes for the validator to walk.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from edge.errors import EdgeError

# No document edge reads (manifests, announcements, alerts, audit records, state files) nests
# beyond 5 levels; 32 leaves room to grow and keeps every walk of a document shallow.
MAX_JSON_DEPTH = 32
# A full config file is about 300 nodes; aliases may repeat a block, within this bound.
MAX_YAML_NODES = 100_000
_READ_BLOCK = 1 << 20
# The largest image edge decodes (36 megapixels, edge.pipeline.images.MAX_PIXELS) stored
# uncompressed as 8-bit RGB (BMP, TIFF) is 108 MB; a bigger file is refused before it is read
# (photos to identify, and photos to enroll, which the watchlist reads without the pipeline).
MAX_IMAGE_BYTES = 128 * 1024 * 1024

ErrorFactory = Callable[[str], Exception]


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def read_bounded(path: Path, limit: int, what: str, error: ErrorFactory = EdgeError) -> bytes:
    """The bytes of the regular file ``path`` (symlinks followed), at most ``limit`` of them.

    ``what`` names the file in messages ("config", "image", ...); ``error`` builds the exception
    raised for any problem (missing, unreadable, not a regular file, larger than ``limit``)."""
    too_large = f"{what} {path} is larger than {limit} bytes (the limit for a {what})"
    try:
        # stat first: opening a FIFO or a device can itself block or have effects.
        mode = os.stat(path).st_mode
        if not stat.S_ISREG(mode):
            raise error(f"{what} {path} is {_kind(mode)}, not a regular file")
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError as exc:
        raise error(f"cannot read {what} {path}: no such file") from exc
    except OSError as exc:
        raise error(f"cannot read {what} {path}: {exc.strerror or exc}") from exc
    try:
        info = os.fstat(fd)  # the file opened, which may not be the one stat'ed
        if not stat.S_ISREG(info.st_mode):
            raise error(f"{what} {path} is {_kind(info.st_mode)}, not a regular file")
        if info.st_size > limit:
            raise error(too_large)
        blocks: list[bytes] = []
        left = limit + 1  # one byte more than allowed tells a file that grew past the limit
        while left > 0:
            block = os.read(fd, min(left, _READ_BLOCK))
            if not block:
                break
            blocks.append(block)
            left -= len(block)
    except OSError as exc:
        raise error(f"cannot read {what} {path}: {exc.strerror or exc}") from exc
    finally:
        os.close(fd)
    data = b"".join(blocks)
    if len(data) > limit:
        raise error(too_large)
    return data


def json_depth_exceeds(document: object, max_depth: int) -> bool:
    """Whether ``document`` nests lists and objects more than ``max_depth`` deep (iterative)."""
    stack: list[tuple[object, int]] = [(document, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth > max_depth:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def load_json(data: bytes | str, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Parse strict JSON (bytes must be UTF-8; no NaN or Infinity); anything wrong, nesting
    beyond ``max_depth`` included, is a ``ValueError`` with a one-line reason."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        document = json.loads(text, parse_constant=_no_constant)
    except RecursionError as exc:
        raise ValueError(f"JSON nested more than {max_depth} levels deep") from exc
    if json_depth_exceeds(document, max_depth):
        raise ValueError(f"JSON nested more than {max_depth} levels deep")
    return document


def _yaml_shape_error(text: str, max_depth: int, max_nodes: int) -> str | None:
    """Why ``text`` nests or expands too far, from its parse events alone (cheap: no document
    is built), or None. An alias counts as the nodes of the collection it names."""
    depth = 0
    counts = [0]  # nodes seen so far in each open collection (the outermost: the document)
    anchors: dict[str, int] = {}
    open_anchors: list[str | None] = []
    for event in yaml.parse(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
        if isinstance(event, yaml.AliasEvent):
            counts[-1] += anchors.get(event.anchor or "", 1)
        elif isinstance(event, yaml.ScalarEvent):
            counts[-1] += 1
            if event.anchor is not None:
                anchors[event.anchor] = 1
        elif isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > max_depth:
                return f"nested more than {max_depth} levels deep"
            counts.append(1)
            open_anchors.append(event.anchor)
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
            size = counts.pop()
            anchor = open_anchors.pop()
            if anchor is not None:
                anchors[anchor] = size
            counts[-1] += size
        if counts[0] + sum(counts[1:]) > max_nodes:
            return f"expands to more than {max_nodes:,} values (aliases repeating aliases)"
    return None


def load_yaml(text: str, max_depth: int = MAX_JSON_DEPTH, max_nodes: int = MAX_YAML_NODES) -> Any:
    """Parse YAML with the safe loader; invalid YAML, nesting beyond ``max_depth`` and aliases
    expanding beyond ``max_nodes`` values are a ``ValueError`` with a one-line reason."""
    try:
        problem = _yaml_shape_error(text, max_depth, max_nodes)
        if problem is not None:
            raise ValueError(problem)
        return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.MarkedYAMLError as exc:
        where = exc.problem_mark or exc.context_mark
        at = f" (line {where.line + 1}, column {where.column + 1})" if where else ""
        raise ValueError(f"{exc.problem or exc.context}{at}".splitlines()[0]) from exc
    except yaml.YAMLError as exc:
        raise ValueError(str(exc).splitlines()[0]) from exc
    except (TypeError, OverflowError) as exc:  # e.g. a date 2024-13-01
        raise ValueError(str(exc).splitlines()[0]) from exc
