"""The alert, the review decision and dispatch's acknowledgement: one typed, frozen value each.

An :class:`Alert` is checked against ``alert-v1.schema.json`` once, when it is made (from a hit
or from the wire), so an alert that exists is valid: the outbox, the publisher and dispatch pass
it on without checking it again. :class:`Review` and :class:`Ack` are checked against their
schema files when they arrive. ``tests/unit/test_alerts_model.py`` holds each model's fields and
its schema file's properties together, so the two cannot drift apart.

The wire form (:meth:`Alert.encode`) is compact UTF-8 JSON with sorted keys: stable, so it can
be hashed.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    model_validator,
)

from edge.alerts.schema import (
    ACK_SCHEMA,
    ACK_SCHEMA_FILE,
    ALERT_SCHEMA,
    REVIEW_SCHEMA,
    REVIEW_SCHEMA_FILE,
    check_utc_time,
    parse_json_object,
    schema_problem,
    uuid7,
    validate_alert,
)
from edge.clock import utc_rfc3339
from edge.config.alerts import AlertsConfig
from edge.errors import AlertError
from edge.types import ContextFrame

log = logging.getLogger(__name__)

JPEG_MAGIC = b"\xff\xd8\xff"
PICTURES = ("crop", "context")  # what the audit log and dispatch's document leave out
JsonObject = dict[str, object]


class HitLike(Protocol):
    """What an alert is made of (a decided match: :class:`edge.pipeline.decide.Hit` fits)."""

    @property
    def track_id(self) -> int: ...
    @property
    def entry_id(self) -> int | str: ...
    @property
    def label(self) -> str: ...
    @property
    def score(self) -> float: ...
    @property
    def threshold(self) -> float: ...
    @property
    def quality(self) -> float: ...
    @property
    def event_time(self) -> datetime | None: ...
    @property
    def crop_jpeg(self) -> bytes | None: ...
    @property
    def context(self) -> ContextFrame | None: ...


class _Part(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class WatchlistRef(_Part):
    id: str
    version: str


class EntryRef(_Part):
    id: str = Field(description="The entry's id in its list.")
    label: str


class Location(_Part):
    name: str | None = None
    lat: float | None = None
    lon: float | None = None


class Crop(_Part):
    media_type: Literal["image/jpeg"]
    data: str  # base64 of the JPEG

    @property
    def jpeg(self) -> bytes:
        return base64.b64decode(self.data)


class Context(Crop):
    width: int
    height: int
    box: tuple[int, int, int, int]  # the matched face in the JPEG's pixels: x1, y1, x2, y2


class Alert(_Part):
    """One watchlist hit, as it travels from the device to dispatch (schema ``edge.alert.v1``)."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    schema_name: Literal["edge.alert.v1"] = Field(alias="schema")
    alert_id: str
    device_id: str
    event_time: str = Field(description="When the matched frame was captured (RFC 3339, UTC).")
    entry: EntryRef
    watchlist: WatchlistRef
    score: float
    threshold: float
    quality: float
    track_id: int
    model_id: str
    location: Location | None = None
    crop: Crop | None = None
    context: Context | None = None
    test: bool

    @model_validator(mode="before")
    @classmethod
    def _valid_document(cls, data: object, info: ValidationInfo) -> object:
        # The one check: the document (as it would go on the wire) against the schema file.
        if isinstance(data, BaseModel) or (info.context or {}).get(_CHECKED):
            return data
        if not isinstance(data, Mapping):
            raise AlertError(f"alert does not match {ALERT_SCHEMA}: not an object")
        document = {
            key: value.model_dump(mode="json", exclude_none=True)
            if isinstance(value, BaseModel)
            else value
            for key, value in data.items()
        }
        for key in ("score", "threshold", "quality"):
            value = document.get(key)
            if isinstance(value, float) and (value != value or value in (_INF, -_INF)):
                raise AlertError(f"alert {key} must be a finite number, not {value}")
        validate_alert(document)
        return document

    @classmethod
    def from_hit(
        cls,
        hit: HitLike,
        *,
        device_id: str,
        watchlist: WatchlistRef,
        model_id: str,
        location: Location | None = None,
        content: AlertsConfig | None = None,
        test: bool = False,
        alert_id: str | None = None,
    ) -> Alert:
        """The alert for ``hit`` with a fresh UUIDv7 id; :class:`AlertError` if it is invalid.

        ``content`` says which pictures go along (``include_crop``/``include_context``) and
        their caps: a picture over its cap is left out (the alert matters more than the
        picture); one that is not a JPEG is an error. Quality is clamped into 0..1."""
        content = content or AlertsConfig()
        if hit.event_time is not None and hit.event_time.tzinfo is None:
            raise AlertError("event time must be timezone-aware (naive datetimes are ambiguous)")
        alert_id = alert_id or uuid7()
        document: dict[str, object] = {
            "schema": ALERT_SCHEMA,
            "alert_id": alert_id,
            "device_id": device_id,
            "event_time": utc_rfc3339(hit.event_time),
            "watchlist": watchlist,
            "entry": {"id": str(hit.entry_id), "label": hit.label},
            "score": float(hit.score),
            "threshold": float(hit.threshold),
            "quality": min(1.0, max(0.0, float(hit.quality))),
            "track_id": int(hit.track_id),
            "model_id": model_id,
            "test": bool(test),
        }
        if location is not None and location.model_dump(exclude_none=True):
            document["location"] = location
        crop = hit.crop_jpeg if content.include_crop else None
        if crop is not None and _fits(alert_id, "crop", crop, content.crop_max_bytes):
            document["crop"] = {"media_type": "image/jpeg", "data": _base64(crop)}
        scene = hit.context if content.include_context else None
        if scene is not None and _fits(
            alert_id, "context frame", scene.jpeg, content.context_max_bytes
        ):
            document["context"] = {
                "media_type": "image/jpeg",
                "data": _base64(scene.jpeg),
                "width": scene.width,
                "height": scene.height,
                "box": list(scene.box),
            }
        return cls.model_validate(document)

    @classmethod
    def decode(cls, payload: bytes) -> Alert:
        """Parse and validate an alert received from the wire (:class:`AlertError` if bad)."""
        document = parse_json_object(payload, "alert payload")
        try:
            return cls.model_validate(document)
        except ValidationError as exc:  # schema-valid yet not the model: a bug, said in one line
            raise AlertError(f"alert does not match {ALERT_SCHEMA}: {_first_error(exc)}") from exc

    @classmethod
    def from_checked(cls, document: Mapping[str, object]) -> Alert:
        """An alert from a document that already passed the schema check (a benchmark's
        synthetic alerts): typed, not checked against the schema again."""
        return cls.model_validate(document, context={_CHECKED: True})

    def document(self) -> JsonObject:
        """The alert as JSON values, exactly as it goes on the wire."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)

    def encode(self) -> bytes:
        """The wire form: compact UTF-8 JSON with sorted keys (stable, so it can be hashed)."""
        return json.dumps(
            self.document(),
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
            allow_nan=False,
        ).encode("utf-8")

    def summary(self) -> JsonObject:
        """The alert without its pictures: what the audit log and dispatch's document keep."""
        return alert_summary(self.document())


_INF = float("inf")
_CHECKED = "schema_checked"


def alert_summary(document: Mapping[str, object]) -> JsonObject:
    """An alert document without its pictures (crop, context frame)."""
    return {k: v for k, v in document.items() if k not in PICTURES}


def _first_error(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = "/".join(str(p) for p in first["loc"]) or "(top level)"
    return f"{where}: {first['msg']}"


def _fits(alert_id: str, what: str, jpeg: bytes, max_bytes: int) -> bool:
    """Whether a picture goes into the alert: an error if it is not a JPEG, False (logged) if it
    is over its cap."""
    if not jpeg.startswith(JPEG_MAGIC):
        raise AlertError(f"alert {what} is not a JPEG (it must start with FF D8 FF)")
    if len(jpeg) > max_bytes:
        log.info(
            "alert %s: %s of %d bytes is over the %d-byte cap, sending the alert without it",
            alert_id,
            what,
            len(jpeg),
            max_bytes,
        )
        return False
    return True


def _base64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _compact(document: Mapping[str, Any]) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode("utf-8")


# --- review decisions --------------------------------------------------------------------------


@dataclass(frozen=True)
class Review:
    """A dispatcher's decision on one alert (schema ``edge.review.v1``, on the review topic)."""

    alert_id: str
    decision: Literal["confirm", "reject"]
    by: str | None
    time: str | None
    note: str | None

    def as_dict(self) -> JsonObject:
        """The decision without its schema name (what the audit log keeps)."""
        out: JsonObject = {"alert_id": self.alert_id, "decision": self.decision}
        for key in ("by", "time", "note"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        return out

    def encode(self) -> bytes:
        return _compact({"schema": REVIEW_SCHEMA, **self.as_dict()})

    @classmethod
    def decode(cls, payload: bytes) -> Review:
        """Parse and validate a review decision; :class:`AlertError` says what is wrong."""
        document = parse_json_object(payload, "review message")
        problem = schema_problem(REVIEW_SCHEMA_FILE, document)
        if problem is not None:
            raise AlertError(f"review message does not match {REVIEW_SCHEMA}: {problem}")
        check_utc_time(document.get("time"), "review time")
        return cls(
            alert_id=document["alert_id"],
            decision=document["decision"],
            by=document.get("by"),
            time=document.get("time"),
            note=document.get("note"),
        )


# --- dispatch acknowledgements -----------------------------------------------------------------


@dataclass(frozen=True)
class Ack:
    """Dispatch stored these alerts; the device may forget them (schema ``edge.ack.v1``)."""

    alert_ids: tuple[str, ...]
    by: str | None = None
    time: str | None = None

    def as_dict(self) -> JsonObject:
        out: JsonObject = {"alert_ids": list(self.alert_ids)}
        if self.by is not None:
            out["by"] = self.by
        if self.time is not None:
            out["time"] = self.time
        return out

    def encode(self) -> bytes:
        return _compact({"schema": ACK_SCHEMA, **self.as_dict()})

    @classmethod
    def decode(cls, payload: bytes) -> Ack:
        """Parse and validate an acknowledgement; :class:`AlertError` says what is wrong."""
        document = parse_json_object(payload, "ack message")
        problem = schema_problem(ACK_SCHEMA_FILE, document)
        if problem is not None:
            raise AlertError(f"ack message does not match {ACK_SCHEMA}: {problem}")
        return cls(tuple(document["alert_ids"]), document.get("by"), document.get("time"))
