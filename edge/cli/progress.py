"""Progress bars for anything that takes more than a few seconds."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import TypeVar

from tqdm import tqdm

T = TypeVar("T")


def progress_bar(items: Iterable[T], description: str, unit: str = "img") -> Iterable[T]:
    """A bar on stderr (so JSON on stdout stays clean), drawn only when stderr is a terminal."""
    bar: Iterable[T] = tqdm(
        list(items), desc=description, unit=unit, file=sys.stderr, leave=False, disable=None
    )
    return bar
