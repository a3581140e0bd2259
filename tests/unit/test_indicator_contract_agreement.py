"""One contract, every writer: the indicator update's JSON record and InfluxDB line are the
model's on every path that skips it, and the valid-record parsers read the event models.

``INDICATOR_UPDATE_WIRE`` (schemas/indicator.py) says how the update is written; the model
writes it (``model_dump_json``, ``indicator_line``), and so do the fast paths: the indicator
stage's ``indicator_record``, the sink's ``IndicatorLineFormatter`` and its Rust batcher. For
any update, all of them give the same bytes, and the model reads the record back unchanged.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from pydantic import BaseModel, ValidationError
from pydantic_core import from_json, to_json
from zerocarbon_native_lines import IndicatorLineBatcher

from schemas.indicator import (
    INDICATOR_LINE_PARTS,
    INDICATOR_UPDATE_WIRE,
    NOT_WRITTEN,
    IndicatorUpdate,
    WireFormat,
    series_key,
)
from sinks.line_protocol import IndicatorLineFormatter, _fast_reads, indicator_line
from streams.indicators.catalogue import _record_template, indicator_record, to_indicator_update
from streams.indicators.valid_records import VALID_RECORD_PARSERS
from streams.indicators.window_state import WindowUpdate
from streams.validation.engine import VALID_ARRAY
from tests.contract.samples import INVALID, VALID
from tests.unit.indicator_update_samples import (
    HEADS,
    NOW,
    PLAIN_TAG_TEXT,
    PLAIN_TEXT,
    Head,
    Point,
    no_head,
    updates,
    window_updates,
)

BUDGET = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
LIB_RS = Path(__file__).resolve().parents[2] / "sinks" / "native_lines" / "src" / "lib.rs"


def model_point(update: IndicatorUpdate, head: Head) -> Point:
    point = indicator_line(update)
    return head(point.window) + point.key, head(point.window) + point.line


def python_point(formatter: IndicatorLineFormatter, record: bytes) -> Point | None:
    points: dict[str, str] = {}
    key = formatter.into(from_json(record), points)
    return None if key is None else (key, points[key])


def rust_point(batcher: IndicatorLineBatcher, record: bytes) -> Point | None:
    points: dict[str, str] = {}
    keys: list[str | None] = []
    if batcher.into([record], 0, points, keys) == 0:
        assert not points and not keys  # a declined record leaves nothing behind
        return None
    key = keys[0]
    assert key is not None
    return key, points[key]


def assert_every_path_agrees(update: IndicatorUpdate, record: bytes, head: Head) -> None:
    """``record`` is the update's JSON; its line is the model's on the Python and Rust paths."""
    assert record == update.model_dump_json(by_alias=True).encode()
    assert IndicatorUpdate.model_validate_json(record) == update
    expected = model_point(update, head)
    formatter, batcher = IndicatorLineFormatter(head), IndicatorLineBatcher(head)
    for _ in range(2):  # the second time from the caches
        assert python_point(formatter, record) == expected
        if b"\\" in record:  # an escaped string: the batcher leaves it to Python
            assert rust_point(batcher, record) in (None, expected)
        else:
            assert rust_point(batcher, record) == expected


@BUDGET
@given(window_updates, NOW, HEADS)
def test_the_indicator_stage_s_records_are_the_model_s_json_and_lines(
    update: WindowUpdate, now: datetime, head: Head
) -> None:
    model = to_indicator_update(update, now)
    # Built without validation, as the validated model.
    assert model == IndicatorUpdate.model_validate(model.model_dump())
    key, record = indicator_record(update, now, to_json(now))
    assert key == series_key(model)
    assert_every_path_agrees(model, record, head)


@BUDGET
@given(updates() | updates(PLAIN_TEXT, PLAIN_TAG_TEXT), HEADS)
def test_any_update_s_record_gives_the_model_s_line_on_every_path(
    update: IndicatorUpdate, head: Head
) -> None:
    assert_every_path_agrees(update, update.model_dump_json(by_alias=True).encode(), head)


# The definition itself, and what a change of the model does to every writer.

SAMPLE = IndicatorUpdate.model_validate(VALID["IndicatorUpdate"][0])


def test_the_record_s_keys_and_order_are_the_model_s() -> None:
    assert INDICATOR_UPDATE_WIRE.json_keys == tuple(json.loads(SAMPLE.model_dump_json(by_alias=True)))
    assert set(INDICATOR_LINE_PARTS) == set(IndicatorUpdate.model_fields)


class _WithSource(IndicatorUpdate):
    source: str  # a new field, without a default


class _WithDefaultedSource(IndicatorUpdate):
    source: str = "sensor"


def test_a_field_without_a_line_role_stops_the_import() -> None:
    with pytest.raises(TypeError, match=r"fields without a part \['source'\]"):
        WireFormat.of(_WithSource, INDICATOR_LINE_PARTS)
    renamed = {
        ("value_kwh" if name == "value" else name): part for name, part in INDICATOR_LINE_PARTS.items()
    }
    with pytest.raises(
        TypeError, match=r"fields without a part \['value'\], parts without a field \['value_kwh'\]"
    ):
        WireFormat.of(IndicatorUpdate, renamed)
    with pytest.raises(TypeError, match="cannot be written as"):
        WireFormat.of(IndicatorUpdate, {**INDICATOR_LINE_PARTS, "unit": INDICATOR_LINE_PARTS["value"]})


@pytest.mark.parametrize("model", [_WithSource, _WithDefaultedSource])
def test_a_new_field_stops_the_fast_paths_until_they_are_taught_it(model: type[IndicatorUpdate]) -> None:
    wire = WireFormat.of(model, {**INDICATOR_LINE_PARTS, "source": NOT_WRITTEN})
    with pytest.raises(TypeError, match="IndicatorLineFormatter"):
        _fast_reads(wire)
    if model is _WithSource:
        with pytest.raises(TypeError, match="indicator_record writes no value for source"):
            _record_template(wire)
    else:  # a default is a constant of every record
        assert b'"source":"sensor"}' in _record_template(wire)
    # The Rust batcher refuses the record: the next tests say where to teach it.
    record = model.model_validate({**SAMPLE.model_dump(), "source": "sensor"}).model_dump_json(by_alias=True)
    assert rust_point(IndicatorLineBatcher(no_head), record.encode()) is None


def rust_update_keys() -> list[str]:
    """The keys ``struct Update`` in lib.rs reads (its field names, or their serde renames)."""
    body = re.search(r"struct Update<'a> \{\n(.*?)\n\}", LIB_RS.read_text(), re.DOTALL)
    assert body is not None, f"struct Update not found in {LIB_RS}"
    keys, rename = [], None
    for line in body.group(1).splitlines():
        if renamed := re.search(r'rename = "([^"]+)"', line):
            rename = renamed.group(1)
        elif field := re.match(r"\s*(\w+):", line):
            keys.append(rename or field.group(1))
            rename = None
    return keys


def test_lib_rs_reads_the_contract_s_keys() -> None:
    """sinks/native_lines/src/lib.rs names every key in ``struct Update``: a change of the
    contract is a change there (and ``make install`` to build it)."""
    assert sorted(rust_update_keys()) == sorted(INDICATOR_UPDATE_WIRE.json_keys)


def test_the_built_rust_batcher_takes_exactly_the_contract_s_keys() -> None:
    """Every key required, no other allowed, in any order: what the installed build accepts."""
    record = json.loads(SAMPLE.model_dump_json(by_alias=True))
    batcher = IndicatorLineBatcher(no_head)

    def taken(fields: dict[str, Any]) -> bool:
        return rust_point(batcher, json.dumps(fields).encode()) is not None

    assert taken(record)
    assert taken(dict(reversed(record.items())))
    for key in INDICATOR_UPDATE_WIRE.json_keys:
        without = {k: v for k, v in record.items() if k != key}
        assert not taken(without), f"the batcher takes a record without {key}"
        assert not taken({**without, key + "_renamed": record[key]}), f"the batcher takes {key} renamed"
    assert not taken({**record, "extra": 1})


# streams/indicators/valid_records.py: the event schemas without the envelope's model validator
# (validation ran it before writing the record), generated from the models' core schemas.

FAMILY_SAMPLES = [
    pytest.param(sample["schema"].split(".")[0], type_name, sample, id=f"{type_name}-{index}")
    for type_name, samples in VALID.items()
    for index, sample in enumerate(samples)
    if sample.get("schema", "").split(".")[0] in VALID_RECORD_PARSERS
]


def test_every_family_has_contract_samples() -> None:
    assert {param.values[0] for param in FAMILY_SAMPLES} == set(VALID_RECORD_PARSERS) == set(VALID_ARRAY)


@pytest.mark.parametrize(("family", "type_name", "sample"), FAMILY_SAMPLES)
def test_a_valid_record_reads_back_as_the_validated_events(family: str, type_name: str, sample: Any) -> None:
    events = VALID_ARRAY[family].validate_json(json.dumps([sample]))
    record = VALID_ARRAY[family].dump_json(events, by_alias=True)  # as validation writes it
    parsed: list[BaseModel] = VALID_RECORD_PARSERS[family].validate_json(record)
    assert type(parsed[0]).__name__ == type_name
    assert parsed == events
    assert VALID_ARRAY[family].dump_json(parsed, by_alias=True) == record


FAMILY_OF_TYPE = {param.values[1]: param.values[0] for param in FAMILY_SAMPLES}
INVALID_FAMILY_SAMPLES = [
    pytest.param(FAMILY_OF_TYPE[type_name], invalid, id=f"{type_name}-{invalid.label}")
    for type_name, invalids in INVALID.items()
    if type_name in FAMILY_OF_TYPE
    for invalid in invalids
]


@pytest.mark.parametrize(("family", "invalid"), INVALID_FAMILY_SAMPLES)
def test_a_field_the_model_refuses_is_refused_by_the_valid_record_parser(family: str, invalid: Any) -> None:
    """Only the cross-field rules and the UTC conversion are left out: every field's type,
    pattern and bound is checked with the model's errors."""
    record = json.dumps([invalid.payload])
    with pytest.raises(ValidationError) as model_errors:
        VALID_ARRAY[family].validate_json(record)
    with pytest.raises(ValidationError) as parser_errors:
        VALID_RECORD_PARSERS[family].validate_json(record)
    assert [(e["loc"], e["type"]) for e in parser_errors.value.errors()] == [
        (e["loc"], e["type"]) for e in model_errors.value.errors()
    ]
