"""The sink's fast path (``IndicatorLineFormatter`` over ``from_json``) on records the
indicator stage does not write: for any, either the fast path declines it, or the model
accepts it and the two lines are byte-identical. A record the model refuses can never be
written by the fast path, so it still reaches the dead letters with the model's reason.

That it writes the model's line for every record the stage writes is
tests/unit/test_indicator_contract_agreement.py.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from pydantic_core import from_json

from schemas.indicator import INDICATOR_UPDATE_WIRE, IndicatorUpdate
from sinks.line_batchers import PythonLineBatcher
from sinks.line_protocol import IndicatorLine, IndicatorLineFormatter, indicator_line
from tests.unit.indicator_update_samples import TEXT, updates

BUDGET = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def model_line(raw: bytes) -> IndicatorLine | None:
    try:
        return indicator_line(IndicatorUpdate.model_validate_json(raw))
    except ValidationError:
        return None


def fast_line(formatter: IndicatorLineFormatter, raw: bytes) -> IndicatorLine | None:
    try:
        record = from_json(raw)
    except ValueError:
        return None
    points: dict[str, str] = {}
    key = formatter.into(record, points)
    if key is None:
        assert not points  # a declined record leaves nothing behind
        return None
    return IndicatorLine(key, points[key], record["window"])


# Values the fast path must judge: every JSON type, and strings shaped like instants.
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=6,
)
INSTANT_LIKE = st.from_regex(
    r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}"
    r"(\.[0-9]{1,8})?(Z|z|[+-][0-9]{2}:?[0-9]{2})?\Z"
)
FIELDS = list(INDICATOR_UPDATE_WIRE.json_keys)


@BUDGET
@given(
    updates(),
    st.sampled_from([*FIELDS, "schema_name", "extra"]),
    st.one_of(JSON_VALUES, INSTANT_LIKE, st.just("<absent>")),
)
def test_a_mutated_record_is_either_declined_or_formatted_as_the_model_would(
    update: IndicatorUpdate, field: str, value: Any
) -> None:
    record = json.loads(update.model_dump_json(by_alias=True))
    if value == "<absent>":
        record.pop(field, None)
    else:
        record[field] = value
    raw = json.dumps(record).encode()
    fast = fast_line(IndicatorLineFormatter(), raw)
    if fast is not None:  # never a line the model would refuse, never a different one
        assert fast == model_line(raw)


@pytest.mark.parametrize(
    "change",
    [
        {"value": "12.5"},  # lax: a number as a string
        {"value": float("nan")},
        {"value": 2**60},
        {"final": 1},
        {"revision": 1.0},
        {"revision": -1},
        {"window_start": 1767225600},  # a Unix timestamp
        {"window_start": "2026-01-01T00:00:00"},  # naive
        {"window_start": "2026-02-30T00:00:00Z"},
        {"window_start": "2026-01-01T24:00:00Z"},
        {"updated_at": "2026-01-01T00:00:00+05:60"},
        {"dimensions": {"commune": 17300}},
        {"dimensions": ["commune"]},
        {"indicator": ""},
        {"indicator": ["a"]},
        {"unit": None},
        {"schema": "indicator.other"},
        {"schema_version": "1"},
        {"schema_name": "indicator.update"},
        {"extra": 1},
    ],
)
def test_what_only_the_model_may_judge_is_declined(change: dict[str, Any]) -> None:
    update = IndicatorUpdate(
        indicator="energy_consumed_kwh", unit="kWh", window="1h",
        window_start=datetime(2026, 1, 1, tzinfo=UTC), window_end=datetime(2026, 1, 1, 1, tzinfo=UTC),
        dimensions={"commune": "17300"}, value=1.5, updated_at=datetime(2026, 1, 1, 2, tzinfo=UTC),
    )  # fmt: skip
    record = {**json.loads(update.model_dump_json(by_alias=True)), **change}
    formatter = IndicatorLineFormatter()
    assert (
        fast_line(formatter, update.model_dump_json(by_alias=True).encode()) is not None
    )  # warms the caches
    assert formatter.into(record, {}) is None


def test_the_head_goes_in_front_of_key_and_line() -> None:
    update = IndicatorUpdate(
        indicator="emissions_kgco2e", unit="kgCO2e", window="1m",
        window_start=datetime(2026, 1, 1, tzinfo=UTC), window_end=datetime(2026, 1, 1, 0, 1, tzinfo=UTC),
        value=3, updated_at=datetime(2026, 1, 1, 2, tzinfo=UTC),
    )  # fmt: skip
    point = fast_line(
        IndicatorLineFormatter(lambda window: f"bucket_{window}\t"),
        update.model_dump_json(by_alias=True).encode(),
    )
    plain = indicator_line(update)
    assert point == IndicatorLine("bucket_1m\t" + plain.key, "bucket_1m\t" + plain.line, "1m")


def test_the_python_batcher_stops_where_the_sink_must_decide_and_keeps_the_order() -> None:
    """The fallback when the Rust module is not built: same contract as the Rust batcher."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    first, second = (
        IndicatorUpdate(
            indicator="energy_consumed_kwh", unit="kWh", window="1h", window_start=start,
            window_end=start + timedelta(hours=1), dimensions={"commune": "17300"}, value=value,
            updated_at=start,
        ).model_dump_json(by_alias=True).encode()
        for value in (1.0, 2.0)
    )  # fmt: skip
    values: list[bytes | None] = [
        first,
        None,
        b"not json",
        first.replace(b'"final":false', b'"final":0'),  # valid for the model, not our stage's shape
        second,
    ]
    batcher = PythonLineBatcher(IndicatorLineFormatter())
    points: dict[str, str] = {}
    keys: list[str | None] = []
    assert batcher.into(values, 0, points, keys) == 1  # a tombstone
    assert batcher.into(values, 2, points, keys) == 2  # not JSON
    assert batcher.into(values, 3, points, keys) == 3  # lax JSON: only the model may judge it
    assert batcher.into(values, 4, points, keys) == 5
    expected = indicator_line(IndicatorUpdate.model_validate_json(second))
    assert points == {expected.key: expected.line}  # the later revision replaced the first
    assert keys == [expected.key, expected.key]
