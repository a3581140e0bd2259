"""An indicator update's Kafka key and value, built without the model, are the model's bytes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError
from pydantic_core import to_json

from streams.indicators.catalogue import INDICATORS, indicator_record, series_key, to_indicator_update
from streams.indicators.window_state import WindowUpdate

names = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12)
dimensions = st.lists(st.tuples(names, names), max_size=4, unique_by=lambda kv: kv[0]).map(tuple)
totals = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False), st.integers(min_value=-(10**15), max_value=10**15)
)
updates = st.builds(
    WindowUpdate,
    indicator=st.sampled_from(sorted(INDICATORS)),
    dimensions=dimensions,
    size=st.sampled_from([0, 60, 900, 3600, 86400]),
    start=st.integers(min_value=0, max_value=4_102_444_800),
    total=totals,
    count=st.integers(min_value=0, max_value=10_000),
    final=st.booleans(),
    revision=st.integers(min_value=0, max_value=10**6),
)
instants = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)


@given(updates, instants)
def test_key_and_value_are_the_model_s_bytes(update: WindowUpdate, now: datetime) -> None:
    model = to_indicator_update(update, now)
    assert indicator_record(update, now, to_json(now)) == (
        series_key(model),
        model.model_dump_json(by_alias=True).encode(),
    )


def test_what_the_model_refuses_is_still_refused() -> None:
    now = datetime(2026, 11, 29, tzinfo=UTC)
    update = WindowUpdate("energy_consumed_kwh", (("commune", "17300"),), 60, 0, float("inf"), 1, False, 0)
    with pytest.raises(ValidationError, match="finite"):
        indicator_record(update, now, to_json(now))


def test_a_clock_with_an_offset_is_published_in_utc() -> None:
    now = datetime(2026, 11, 29, 6, tzinfo=timezone(timedelta(hours=1)))
    update = WindowUpdate("emissions_kgco2e", (), 0, 1_767_225_600, 2.5, 1, False, 3)
    _, value = indicator_record(update, now, to_json(now))
    assert b'"updated_at":"2026-11-29T05:00:00Z"' in value
