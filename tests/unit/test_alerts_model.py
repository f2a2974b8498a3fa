"""The typed alert: its wire form is byte for byte what edge sent before it existed, and its
fields are the schema file's (one definition: the two cannot drift apart)."""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from datetime import UTC, datetime
from typing import Any, Literal

import pytest
from alerts_helpers import SampleHit, sample_alert
from pydantic import BaseModel

from edge.alerts.model import Ack, Alert, Location, Review, WatchlistRef
from edge.alerts.schema import ACK_SCHEMA_FILE, ALERT_SCHEMA_FILE, REVIEW_SCHEMA_FILE, load_schema
from edge.config.alerts import AlertsConfig
from edge.errors import AlertError
from edge.types import ContextFrame

JPEG = b"\xff\xd8\xff\xe0" + bytes(range(40))
SCENE = ContextFrame(JPEG, 64, 48, (1, 2, 30, 40))
EVENT = datetime(2025, 3, 1, 12, 30, 5, tzinfo=UTC)
PICTURE = "/9j/4AABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4fICEiIyQlJic="

# What build_alert + encode_alert (the code before the model) sent for the same inputs.
WIRE_BEFORE = {
    "plain": (
        b'{"alert_id":"019a7c3e-5b2d-7c41-9f0e-3d2b8a1c4e5f","device_id":"cam-1","entry":{"id":"42",'
        b'"label":"Zo\xc3\xab \xe6\x9d\x8e"},"event_time":"2025-03-01T12:30:05.123Z","model_id":'
        b'"mobilefacenet-fp32","quality":0.83,"schema":"edge.alert.v1","score":0.7134,"test":false,'
        b'"threshold":0.6,"track_id":12,"watchlist":{"id":"wl-main","version":"7"}}'
    ),
    "full": (
        b'{"alert_id":"019a7c3e-5b2d-7c41-9f0e-3d2b8a1c4e60","context":{"box":[1,2,30,40],"data":"'
        + PICTURE.encode()
        + b'","height":48,"media_type":"image/jpeg","width":64},"crop":{"data":"'
        + PICTURE.encode()
        + b'","media_type":"image/jpeg"},"device_id":"cam-1","entry":{"id":"e1","label":"P"},'
        b'"event_time":"2025-03-01T12:30:05.000Z","location":{"lat":52.5,"lon":13.4,"name":'
        b'"North gate"},"model_id":"m","quality":1.0,"schema":"edge.alert.v1","score":1.0,'
        b'"test":true,"threshold":1.0,"track_id":0,"watchlist":{"id":"wl-main","version":"v9"}}'
    ),
    "name_only_pictures_over_their_caps": (
        b'{"alert_id":"019a7c3e-5b2d-7c41-9f0e-3d2b8a1c4e61","device_id":"cam-1","entry":{"id":"e1",'
        b'"label":"P"},"event_time":"2025-03-01T12:30:05.000Z","location":{"name":"Gate"},'
        b'"model_id":"m","quality":0.0,"schema":"edge.alert.v1","score":0.5,"test":false,'
        b'"threshold":0.4,"track_id":3,"watchlist":{"id":"w","version":"0"}}'
    ),
}


def _content(crop_max: int = 32 * 1024, context_max: int = 128 * 1024) -> AlertsConfig:
    return AlertsConfig.model_construct(
        **{
            **AlertsConfig().model_dump(),
            "crop_max_bytes": crop_max,
            "context_max_bytes": context_max,
        }
    )


def _made(name: str) -> Alert:
    if name == "plain":
        hit = SampleHit(12, 42, "Zoë 李", 0.7134, 0.6, 0.83, EVENT.replace(microsecond=123456))
        return Alert.from_hit(
            hit,
            device_id="cam-1",
            watchlist=WatchlistRef(id="wl-main", version="7"),
            model_id="mobilefacenet-fp32",
            alert_id="019a7c3e-5b2d-7c41-9f0e-3d2b8a1c4e5f",
        )
    if name == "full":
        return Alert.from_hit(
            SampleHit(0, "e1", "P", 1, 1, 1, EVENT, crop_jpeg=JPEG, context=SCENE),
            device_id="cam-1",
            watchlist=WatchlistRef(id="wl-main", version="v9"),
            model_id="m",
            location=Location(name="North gate", lat=52.5, lon=13.4),
            test=True,
            alert_id="019a7c3e-5b2d-7c41-9f0e-3d2b8a1c4e60",
        )
    return Alert.from_hit(
        SampleHit(3, "e1", "P", 0.5, 0.4, 0.0, EVENT, crop_jpeg=JPEG, context=SCENE),
        device_id="cam-1",
        watchlist=WatchlistRef(id="w", version="0"),
        model_id="m",
        location=Location(name="Gate"),
        content=_content(crop_max=10, context_max=10),
        alert_id="019a7c3e-5b2d-7c41-9f0e-3d2b8a1c4e61",
    )


@pytest.mark.parametrize("name", sorted(WIRE_BEFORE))
def test_the_wire_form_is_what_edge_sent_before(name: str) -> None:
    alert = _made(name)
    assert alert.encode() == WIRE_BEFORE[name]
    assert Alert.decode(WIRE_BEFORE[name]) == alert


def test_an_alert_is_checked_when_it_is_made_from_a_document() -> None:
    document = json.loads(sample_alert().encode())
    document["quality"] = 1.5
    with pytest.raises(AlertError, match="quality"):
        Alert.model_validate(document)


def test_review_and_ack_wire_forms_are_unchanged() -> None:
    review = Review("019a7c3e-5b2d-7c41-9f0e-3d2b8a1c4e5f", "reject", "op-7", None, "not him")
    assert review.encode() == (
        b'{"alert_id":"019a7c3e-5b2d-7c41-9f0e-3d2b8a1c4e5f","by":"op-7","decision":"reject",'
        b'"note":"not him","schema":"edge.review.v1"}'
    )
    assert Review.decode(review.encode()) == review
    ack = Ack(("019a7c3e-5b2d-7c41-9f0e-3d2b8a1c4e5f",), by="dispatch-1")
    assert ack.encode() == (
        b'{"alert_ids":["019a7c3e-5b2d-7c41-9f0e-3d2b8a1c4e5f"],"by":"dispatch-1",'
        b'"schema":"edge.ack.v1"}'
    )
    assert Ack.decode(ack.encode()) == ack


# --- one definition: the models' fields are the schema files' ----------------------------------

JSON_TYPES = {str: "string", float: "number", int: "integer", bool: "boolean"}


def _unwrap(annotation: Any) -> tuple[Any, bool]:
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        assert len(members) == 1
        return members[0], True
    return annotation, False


def _check_type(annotation: Any, schema: dict[str, Any], where: str) -> None:
    kind, _ = _unwrap(annotation)
    if isinstance(kind, type) and issubclass(kind, BaseModel):
        _check_model(kind, schema, where)
    elif typing.get_origin(kind) is Literal:
        allowed = [schema["const"]] if "const" in schema else schema["enum"]
        assert list(typing.get_args(kind)) == allowed, where
    elif typing.get_origin(kind) is tuple:
        assert schema["type"] == "array", where
        items = typing.get_args(kind)
        if items[-1] is Ellipsis:
            items = items[:1]
        else:
            assert len(items) == schema["minItems"] == schema["maxItems"], where
        for item in set(items):
            _check_type(item, schema["items"], f"{where}[]")
    else:
        assert schema["type"] == JSON_TYPES[kind], where


def _check_model(model: type[BaseModel], schema: dict[str, Any], where: str) -> None:
    fields = {info.alias or name: info for name, info in model.model_fields.items()}
    assert set(fields) == set(schema["properties"]), where
    required = {name for name, info in fields.items() if info.is_required()}
    assert required == set(schema.get("required", [])), where
    for name, info in fields.items():
        _check_type(info.annotation, schema["properties"][name], f"{where}.{name}")


def test_the_alert_model_is_the_alert_schema() -> None:
    _check_model(Alert, load_schema(ALERT_SCHEMA_FILE), "alert")


@pytest.mark.parametrize(
    ("value", "file_name"), [(Review, REVIEW_SCHEMA_FILE), (Ack, ACK_SCHEMA_FILE)]
)
def test_review_and_ack_are_their_schemas(value: type, file_name: str) -> None:
    schema = load_schema(file_name)
    hints = typing.get_type_hints(value)
    fields = {f.name for f in dataclasses.fields(value)}
    assert fields | {"schema"} == set(schema["properties"])  # the schema name is added on encode
    required = {name for name in fields if not _unwrap(hints[name])[1]}
    assert required == set(schema["required"]) - {"schema"}
    for name in fields:
        _check_type(hints[name], schema["properties"][name], f"{file_name}.{name}")
