"""Indicator updates: what the platform publishes for dashboards and downstream services.

``IndicatorUpdate`` is the contract; ``INDICATOR_UPDATE_WIRE`` beside it says once how its
fields are written: the JSON record (keys and order: the model's own) and the InfluxDB line
(what each field is in it). The Python paths that skip the model (``indicator_record``, the
sink's ``IndicatorLineFormatter``) take their keys, order and roles from it; the Rust batcher
is held to it by tests/unit/test_indicator_contract_agreement.py. A field of the model
without a declared role stops the import here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from schemas.envelope import UtcDatetime


class IndicatorUpdate(BaseModel):
    """The current value of one indicator for one window and one set of dimensions.

    Keyed by (indicator, window, window_start, dimensions): a later update with the same key
    replaces the earlier one (compacted topics, idempotent InfluxDB points).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    schema_name: Literal["indicator.update"] = Field(default="indicator.update", alias="schema")
    schema_version: int = 1
    indicator: str = Field(min_length=1, description="e.g. energy_consumed, emissions")
    unit: str = Field(description="e.g. kWh, kgCO2e, pkm, ratio")
    window: str = Field(description="window size: 1m, 15m, 1h, 1d (a local day), 1mo (a local month), ytd")
    window_start: UtcDatetime
    window_end: UtcDatetime
    dimensions: dict[str, str] = Field(default_factory=dict, description="commune, sector, carrier...")
    value: float = Field(allow_inf_nan=False)
    final: bool = Field(default=False, description="true once the window closed on event time")
    revision: int = Field(default=0, ge=0, description="increases each time late data corrects it")
    updated_at: UtcDatetime


class LineRole(StrEnum):
    """What a field of the model is in its InfluxDB line ``measurement,tags fields timestamp``."""

    MEASUREMENT = "measurement"
    TAG = "tag"  # one tag, named after the field
    TAG_MAP = "tag map"  # a str -> str map: one tag per entry, by name, empty values left out
    FIELD = "field"  # named after the field, of its LineType
    TIMESTAMP = "timestamp"  # an instant, in whole seconds
    NOT_WRITTEN = "not written"


class LineType(StrEnum):
    """The type of a line-protocol field: how its value is written."""

    FLOAT = "float"  # repr(float): 1.5, 1e+16
    INTEGER = "integer"  # 3i
    BOOLEAN = "boolean"  # true, false
    STRING = "string"  # "k\"Wh", backslashes and quotes escaped


# Annotations each role or line type takes: a field of another type is refused at import.
_ROLE_TYPES: dict[LineRole | LineType, tuple[Any, ...]] = {
    LineRole.MEASUREMENT: (str,),
    LineRole.TAG: (str,),
    LineRole.TAG_MAP: (dict[str, str],),
    LineRole.TIMESTAMP: (datetime, AwareDatetime),
    LineType.FLOAT: (float,),
    LineType.INTEGER: (int,),
    LineType.BOOLEAN: (bool,),
    LineType.STRING: (str,),
}


@dataclass(frozen=True)
class LinePart:
    """One field's part of the line: its role, and its type when it is a line-protocol field."""

    role: LineRole
    type: LineType | None = None


MEASUREMENT = LinePart(LineRole.MEASUREMENT)
TAG = LinePart(LineRole.TAG)
TAG_MAP = LinePart(LineRole.TAG_MAP)
TIMESTAMP = LinePart(LineRole.TIMESTAMP)
NOT_WRITTEN = LinePart(LineRole.NOT_WRITTEN)


@dataclass(frozen=True)
class WireFormat:
    """How a model's fields are written: its JSON keys in order, and each field's line part.

    Built by ``of``, which refuses a model field without a part, a part without a field, a
    field whose type its role cannot write, and a line without one measurement and timestamp.
    """

    model: type[BaseModel]
    json_key: dict[str, str]  # field name -> its key in the record (by_alias), in the model's order
    measurement: str
    tags: tuple[str, ...]
    tag_map: str | None
    fields: tuple[tuple[str, LineType], ...]  # in the order of the line
    timestamp: str
    not_written: tuple[str, ...]

    @property
    def json_keys(self) -> tuple[str, ...]:
        """The record's keys, in the order ``model_dump_json`` writes them."""
        return tuple(self.json_key.values())

    @classmethod
    def of(cls, model: type[BaseModel], parts: dict[str, LinePart]) -> WireFormat:
        fields = model.model_fields
        if fields.keys() != parts.keys():
            raise TypeError(
                f"{model.__name__} and its line parts disagree: fields without a part "
                f"{sorted(fields.keys() - parts.keys())}, parts without a field "
                f"{sorted(parts.keys() - fields.keys())} (declare each beside the model)"
            )
        for name, part in parts.items():
            if (part.role is LineRole.FIELD) != (part.type is not None):
                raise TypeError(f"{model.__name__}.{name}: a line type is for a FIELD, and a FIELD needs one")
            accepted = _ROLE_TYPES.get(part.type or part.role)
            annotation = fields[name].annotation
            if accepted is not None and annotation not in accepted:
                raise TypeError(f"{model.__name__}.{name}: a {annotation} cannot be written as {part}")
        by_role = {role: [n for n, p in parts.items() if p.role is role] for role in LineRole}
        if len(by_role[LineRole.MEASUREMENT]) != 1 or len(by_role[LineRole.TIMESTAMP]) != 1:
            raise TypeError(f"{model.__name__}: a line needs one measurement and one timestamp")
        if len(by_role[LineRole.TAG_MAP]) > 1:
            raise TypeError(f"{model.__name__}: at most one tag map")
        return cls(
            model=model,
            json_key={name: info.serialization_alias or name for name, info in fields.items()},
            measurement=by_role[LineRole.MEASUREMENT][0],
            tags=tuple(by_role[LineRole.TAG]),
            tag_map=next(iter(by_role[LineRole.TAG_MAP]), None),
            fields=tuple((n, p.type) for n, p in parts.items() if p.type is not None),
            timestamp=by_role[LineRole.TIMESTAMP][0],
            not_written=tuple(by_role[LineRole.NOT_WRITTEN]),
        )


INDICATOR_LINE_PARTS: dict[str, LinePart] = {
    # Every field of IndicatorUpdate once, in the order of the line.
    "indicator": MEASUREMENT,
    "window": TAG,
    "dimensions": TAG_MAP,
    "value": LinePart(LineRole.FIELD, LineType.FLOAT),
    "final": LinePart(LineRole.FIELD, LineType.BOOLEAN),
    "revision": LinePart(LineRole.FIELD, LineType.INTEGER),
    "unit": LinePart(LineRole.FIELD, LineType.STRING),
    "window_start": TIMESTAMP,
    "schema_name": NOT_WRITTEN,
    "schema_version": NOT_WRITTEN,
    "window_end": NOT_WRITTEN,
    "updated_at": NOT_WRITTEN,
}
INDICATOR_UPDATE_WIRE = WireFormat.of(IndicatorUpdate, INDICATOR_LINE_PARTS)
"""The indicator update's JSON record and line, for every writer and reader that skips the model."""


def series_key(update: IndicatorUpdate) -> bytes:
    """The compaction key: one series and one window start."""
    dims = ",".join(f"{k}={v}" for k, v in sorted(update.dimensions.items()))
    return f"{update.indicator}|{dims}|{update.window}|{int(update.window_start.timestamp())}".encode()
