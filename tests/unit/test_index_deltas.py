"""Successive meter indexes become consumption; resets and rollovers never become absurd values."""

from datetime import UTC, datetime, timedelta

from streams.indicators.index_deltas import (
    Consumption,
    IndexAnomaly,
    IndexState,
    counter_capacity,
    index_delta,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)


def test_first_index_is_a_baseline() -> None:
    out = index_delta(None, 1234.0, T0, max_power_kw=36)
    assert isinstance(out, IndexAnomaly) and out.kind == "first"


def test_increase_is_consumption_over_the_elapsed_time() -> None:
    out = index_delta(IndexState(1000.0, T0), 1002.5, T0 + HOUR, max_power_kw=36)
    assert out == Consumption(2.5, T0, T0 + HOUR)


def test_rollover_of_a_six_digit_counter_is_unwrapped() -> None:
    out = index_delta(IndexState(999_998.0, T0), 3.0, T0 + HOUR, max_power_kw=36)
    assert isinstance(out, Consumption)
    assert out.rolled_over and out.kwh == 5.0


def test_fall_from_the_middle_of_the_range_is_a_reset_not_a_negative_consumption() -> None:
    out = index_delta(IndexState(52_000.0, T0), 10.0, T0 + HOUR, max_power_kw=36)
    assert isinstance(out, IndexAnomaly) and out.kind == "reset"
    assert "52000" in out.message


def test_wrap_that_would_exceed_the_meter_power_is_a_reset() -> None:
    out = index_delta(IndexState(950_000.0, T0), 900.0, T0 + HOUR, max_power_kw=36)
    assert isinstance(out, IndexAnomaly) and out.kind == "reset"


def test_jump_beyond_the_meter_power_is_reported() -> None:
    out = index_delta(IndexState(1000.0, T0), 5000.0, T0 + HOUR, max_power_kw=36)
    assert isinstance(out, IndexAnomaly) and out.kind == "jump"


def test_index_not_after_the_previous_one_is_out_of_order() -> None:
    out = index_delta(IndexState(1000.0, T0), 1001.0, T0, max_power_kw=36)
    assert isinstance(out, IndexAnomaly) and out.kind == "out_of_order"


def test_counter_capacity_is_the_next_power_of_ten_and_at_least_a_four_digit_register() -> None:
    assert counter_capacity(999_998) == 1_000_000
    assert counter_capacity(1_000_000) == 10_000_000
    assert counter_capacity(9_600) == 10_000
    assert counter_capacity(9.6) == 10_000
    assert counter_capacity(0.5) == 10_000


def test_a_reset_soon_after_a_reset_is_a_reset_not_a_wrap() -> None:
    out = index_delta(IndexState(9.6, T0), 4.7, T0 + HOUR, max_power_kw=36)
    assert isinstance(out, IndexAnomaly) and out.kind == "reset"


def test_a_four_digit_register_wraps() -> None:
    out = index_delta(IndexState(9_998.0, T0), 3.0, T0 + HOUR, max_power_kw=36)
    assert isinstance(out, Consumption) and out.rolled_over and out.kwh == 5.0
