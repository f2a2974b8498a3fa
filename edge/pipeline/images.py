"""Reading image files and image bytes into BGR uint8 arrays, refusing bad input clearly."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from edge.errors import ImageError
from edge.system.inputs import MAX_IMAGE_BYTES, read_bounded
from edge.types import Image

# A 6000x6000 photo is the largest we accept: beyond that the decode alone costs more memory
# than a Raspberry Pi should spend on one frame, and no camera we target produces it.
MAX_PIXELS = 36_000_000
_JPEG_START, _JPEG_END = b"\xff\xd8", b"\xff\xd9"
# OpenCV prints its own decoder complaints to stderr; every failure here becomes one ImageError
# line instead, so its logging is silenced where images enter.
cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)


def decode_image(data: bytes, name: str = "image") -> Image:
    """Decode image bytes to BGR uint8; 16-bit, grey, alpha and CMYK inputs are converted."""
    if not data:
        raise ImageError(f"{name}: empty file")
    if data.startswith(_JPEG_START) and _JPEG_END not in data[-4096:]:
        # libjpeg "recovers" a truncated JPEG by painting the missing part grey; refuse instead.
        raise ImageError(f"{name}: truncated JPEG (no end-of-image marker)")
    buffer = np.frombuffer(data, dtype=np.uint8)
    too_large = f"{name}: image too large (over {MAX_PIXELS // 1_000_000} megapixels)"
    try:
        image = cv2.imdecode(buffer, cv2.IMREAD_COLOR)
    except cv2.error as exc:
        if "MAX_IMAGE_PIXELS" in str(exc):  # refused from the header (see edge/__init__.py)
            raise ImageError(too_large) from exc
        raise ImageError(f"{name}: cannot decode image ({exc.err or exc})") from exc
    if image is None:
        raise ImageError(f"{name}: not an image, or a corrupt or truncated one")
    height, width = image.shape[:2]
    if height * width > MAX_PIXELS:  # OPENCV_IO_MAX_IMAGE_PIXELS was set higher by the user
        raise ImageError(too_large)
    return np.ascontiguousarray(image, dtype=np.uint8)


def read_image(path: Path) -> Image:
    """Read an image file as BGR uint8 (H, W, 3); any problem is one :class:`ImageError`.

    Only a regular file of at most :data:`MAX_IMAGE_BYTES` is read: a FIFO, a device (a
    symlink to /dev/zero) or a directory is refused before reading."""
    return decode_image(read_bounded(path, MAX_IMAGE_BYTES, "image", ImageError), str(path))
