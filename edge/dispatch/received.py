"""An alert as dispatch receives it from the wire: decoded and validated (one
:class:`edge.alerts.model.Alert`), its crop and scene frame kept apart as JPEG bytes.

The MQTT side decodes here; the database (:mod:`edge.dispatch.store`) is handed what this makes
and never reads a wire payload itself.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from edge.alerts.model import Alert, Context
from edge.errors import AlertError

log = logging.getLogger(__name__)

# The largest alert a device can send (a 256 KiB crop, a 512 KiB context frame, the rest small),
# with room: anything larger is refused before it is parsed.
MAX_ALERT_BYTES = 1 << 20


@dataclass(frozen=True)
class SceneFrame:
    """An alert's scene frame: the JPEG as sent, its size, and the matched face's box in it."""

    jpeg: bytes
    width: int
    height: int
    box: tuple[int, int, int, int]


@dataclass(frozen=True)
class Received:
    """One alert as received: validated, without its pictures, which are kept apart as JPEGs."""

    alert: Alert
    crop: bytes | None
    context: SceneFrame | None = None

    @property
    def alert_id(self) -> str:
        return self.alert.alert_id

    @property
    def device_id(self) -> str:
        return self.alert.device_id


def received(payload: bytes) -> Received:
    """Decode and validate an alert payload (:class:`edge.errors.AlertError` if invalid).

    A context frame whose box does not lie inside it is dropped (logged): the alert matters
    more than the picture, and a box drawn elsewhere would point at the wrong person."""
    if len(payload) > MAX_ALERT_BYTES:
        raise AlertError(f"alert of {len(payload)} bytes is over the {MAX_ALERT_BYTES}-byte limit")
    alert = Alert.decode(payload)
    crop = None if alert.crop is None else alert.crop.jpeg
    scene = _scene(alert.context, alert.alert_id)
    # Removing optional parts keeps the alert valid: no second check needed.
    return Received(alert.model_copy(update={"crop": None, "context": None}), crop, scene)


def checked(document: Mapping[str, object]) -> Received:
    """A received alert from a document already known to be valid and without pictures (the
    benchmark's synthetic ones, millions of them): not checked against the schema again."""
    return Received(Alert.from_checked(document), None)


def _scene(sent: Context | None, alert_id: str) -> SceneFrame | None:
    if sent is None:
        return None
    x1, y1, x2, y2 = sent.box
    if not (x1 < x2 <= sent.width and y1 < y2 <= sent.height):
        log.warning(
            "alert %s: context box %s is not inside its %dx%d frame: frame dropped",
            alert_id,
            list(sent.box),
            sent.width,
            sent.height,
        )
        return None
    return SceneFrame(sent.jpeg, sent.width, sent.height, sent.box)
