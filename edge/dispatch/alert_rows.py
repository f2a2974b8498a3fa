"""How an :class:`~edge.alerts.model.Alert` is kept in dispatch's ``alerts`` table: derived from
the model, so the table, its rows and the API's shapes name no field of their own.

Each leaf field of the model is one column, named by its path (``watchlist.id`` ->
``watchlist_id``), typed by its annotation, its length from the schema file's ``maxLength``;
the pictures have tables of their own. Dispatch's own columns (arrival, review state) are in
:mod:`edge.dispatch.tables`.
"""

from __future__ import annotations

import json
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from pydantic import BaseModel
from sqlalchemy import BigInteger, Boolean, Column, Float, String
from sqlalchemy.types import TypeEngine

from edge.alerts.model import Alert, JsonObject
from edge.alerts.schema import ALERT_SCHEMA_FILE, load_schema
from edge.clock import parse_time, utc_rfc3339
from edge.dispatch.received import Received

NOT_STORED = frozenset({"schema_name", "crop", "context"})  # the pictures: tables of their own
# Columns named before the path rule.
COLUMN_NAMES: dict[tuple[str, ...], str] = {("location", "lat"): "lat", ("location", "lon"): "lon"}
# Strings the schema bounds by a pattern rather than a maxLength.
PATTERN_LENGTHS = {"alert_id": 36, "device_id": 64, "event_time": 40}
_SQL_TYPES: dict[type, TypeEngine[Any]] = {
    float: Float(),
    int: BigInteger(),
    bool: Boolean(),
}
Scalar = str | float | int | bool | None


@dataclass(frozen=True)
class AlertField:
    """One leaf field of the alert as the table keeps it."""

    path: tuple[str, ...]
    column: str
    kind: type
    required: bool
    max_length: int | None

    def value(self, alert: Alert) -> Scalar:
        value: object = alert
        for part in self.path:
            value = getattr(value, part, None)
        assert value is None or isinstance(value, str | float | int | bool)
        return value


def _optional_part(annotation: object) -> tuple[object, bool]:
    """``X | None`` -> (X, True); anything else -> (it, False)."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(members) == 1:
            return members[0], True
    return annotation, False


def _leaves(
    model: type[BaseModel], path: tuple[str, ...], required: bool, schema: Mapping[str, object]
) -> list[AlertField]:
    out: list[AlertField] = []
    properties = schema.get("properties", {})
    assert isinstance(properties, dict)
    for name, info in model.model_fields.items():
        if not path and name in NOT_STORED:
            continue
        kind, optional = _optional_part(info.annotation)
        here, needed = (*path, name), required and not optional
        sub_schema = properties.get(info.alias or name, {})
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            out += _leaves(kind, here, needed, sub_schema)
            continue
        assert isinstance(kind, type), f"alert field {'.'.join(here)}: {kind!r} is not a column"
        column = COLUMN_NAMES.get(here, "_".join(here))
        length = sub_schema.get("maxLength", PATTERN_LENGTHS.get(column))
        out.append(AlertField(here, column, kind, needed, length))
    return out


@cache
def alert_fields() -> tuple[AlertField, ...]:
    """The alert's stored fields, in the model's order."""
    return tuple(_leaves(Alert, (), True, load_schema(ALERT_SCHEMA_FILE)))


def alert_columns() -> list[Column[object]]:
    """The ``alerts`` table's columns for the alert's own fields."""
    columns: list[Column[object]] = []
    for field in alert_fields():
        sql = String(field.max_length) if field.kind is str else _SQL_TYPES[field.kind]
        columns.append(
            Column(
                field.column,
                sql,
                nullable=not field.required,
                unique=True if field.column == "alert_id" else None,
            )
        )
    return columns


def alert_row(item: Received, now: float) -> dict[str, Scalar]:
    """The ``alerts`` row of a received alert (``state`` new), its document without pictures."""
    row = {field.column: field.value(item.alert) for field in alert_fields()}
    # Normalised (milliseconds, 'Z') so that the text sorts as time does.
    row["event_time"] = utc_rfc3339(parse_time(item.alert.event_time))
    row.update(
        received_at=now,
        has_crop=item.crop is not None,
        has_context=item.context is not None,
        state="new",
        document=json.dumps(item.alert.summary(), sort_keys=True, separators=(",", ":")),
    )
    return row


def alert_parts(row: Mapping[str, object]) -> JsonObject:
    """The alert's fields of a stored row, nested as in the alert (``location`` None when the
    row has neither a place name nor coordinates)."""
    out: JsonObject = {}
    for field in alert_fields():
        value = row.get(field.column)
        if value is not None and field.kind is not str:
            value = field.kind(value)
        parent = out
        for part in field.path[:-1]:
            child = parent.setdefault(part, {})
            assert isinstance(child, dict)
            parent = child
        parent[field.path[-1]] = value
    location = out.get("location")
    if isinstance(location, dict) and location.get("name") is None and location.get("lat") is None:
        out["location"] = None
    return out
