"""Local days: where the territory's days and years begin (Europe/Paris by default), the 23- and
25-hour days of the clock changes, and a state that counted UTC days going on with local ones."""

from __future__ import annotations

import json
import zlib
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.local_calendar import (
    DAY,
    MONTH,
    UTC_CALENDAR,
    SwitchedCalendar,
    UnknownTimeZone,
    ZoneCalendar,
    calendar_named,
    switched,
)
from streams.indicators.catalogue import to_indicator_update
from streams.indicators.enrichment import Contribution, Measure
from streams.indicators.window_state import WindowState, WindowUpdate
from streams.indicators.window_state_codec import FORMAT, PartitionState, decode, encode

PARIS = ZoneInfo("Europe/Paris")
CALENDAR = ZoneCalendar("Europe/Paris")
DIMS = (("carrier", "electricity"), ("commune", "17300"), ("sector", "tertiary"))
SIZES = (60, 900, 3600, DAY)


def _epoch(day: date, hour: int = 0) -> int:
    return int(datetime(day.year, day.month, day.day, hour, tzinfo=PARIS).timestamp())


def _reading(n: int, ts: int, kwh: float = 1.0) -> Contribution:
    at = datetime.fromtimestamp(ts, UTC)
    return Contribution(f"e{n}", "p", at, (Measure("energy_consumed_kwh", DIMS, kwh),), "p")


def test_the_days_of_the_clock_changes_last_23_and_25_hours() -> None:
    spring = CALENDAR.day(_epoch(date(2026, 3, 29), 12))
    autumn = CALENDAR.day(_epoch(date(2026, 10, 25), 12))
    ordinary = CALENDAR.day(_epoch(date(2026, 12, 7), 12))
    assert spring[1] - spring[0] == 23 * 3600
    assert autumn[1] - autumn[0] == 25 * 3600
    assert ordinary[1] - ordinary[0] == 24 * 3600
    # Local midnight: 22:00 UTC in summer time, 23:00 UTC in winter time, the day before.
    assert datetime.fromtimestamp(autumn[0], UTC) == datetime(2026, 10, 24, 22, tzinfo=UTC)
    assert datetime.fromtimestamp(autumn[1], UTC) == datetime(2026, 10, 25, 23, tzinfo=UTC)


@given(st.integers(min_value=0, max_value=4_102_444_800))  # 1970 to 2100
def test_a_local_day_holds_exactly_the_instants_of_its_local_date(ts: int) -> None:
    start, end = CALENDAR.day(ts)
    assert start <= ts < end
    local = datetime.fromtimestamp(start, PARIS)
    assert (local.hour, local.minute, local.second) == (0, 0, 0)
    assert local.date() == datetime.fromtimestamp(ts, PARIS).date()
    assert datetime.fromtimestamp(end - 1, PARIS).date() == local.date()
    assert CALENDAR.day(end)[0] == end  # the next day begins where this one ends
    assert start % 900 == 0  # a whole number of minute and quarter-hour windows
    assert CALENDAR.year_of(ts) == local.year
    assert CALENDAR.year_start(local.year) == _epoch(date(local.year, 1, 1))


def test_utc_days_are_the_arithmetic_ones() -> None:
    ts = int(datetime(2026, 10, 25, 23, 30, tzinfo=UTC).timestamp())
    assert UTC_CALENDAR.day(ts) == (ts - ts % DAY, ts - ts % DAY + DAY)
    assert UTC_CALENDAR.year_start(2026) == int(datetime(2026, 1, 1, tzinfo=UTC).timestamp())


def test_an_unknown_zone_is_refused_with_what_to_give() -> None:
    with pytest.raises(UnknownTimeZone, match="Europe/Paris or UTC"):
        ZoneCalendar("Europe/Lutece")


def _counted_by_window(state: WindowState, readings: list[Contribution]) -> dict[tuple[int, int], float]:
    state.add_all(readings)
    updates = state.flush()
    return {(u.size, u.start): round(u.total, 6) for u in updates if u.indicator == "energy_consumed_kwh"}


def test_the_25_hour_day_has_25_hourly_windows_and_their_sum() -> None:
    day = date(2026, 10, 25)
    start, end = _epoch(day), _epoch(day + timedelta(days=1))
    readings = [_reading(n, ts, 0.25) for n, ts in enumerate(range(start, end, 900))]  # a reading per quarter
    state = WindowState(SIZES, grace_seconds=0, calendar=CALENDAR)
    windows = _counted_by_window(state, readings)
    hours = {s: v for (size, s), v in windows.items() if size == 3600 and start <= s < end}
    assert len(hours) == 25 and all(v == 1.0 for v in hours.values())
    days = {s: v for (size, s), v in windows.items() if size == DAY}
    assert days == {start: 25.0}  # one local day, the sum of its 25 hours
    ytd = [u for u in state.flush() if u.size == 0]
    assert ytd == []  # published at the first flush already
    published = to_indicator_update(WindowUpdate("energy_consumed_kwh", DIMS, DAY, start, 25.0, 100, True, 0),
                                    datetime.now(UTC), CALENDAR)  # fmt: skip
    assert published.window_end - published.window_start == timedelta(hours=25)


def test_a_day_closes_at_its_local_end_and_a_reading_just_after_opens_the_next() -> None:
    day = date(2026, 3, 29)  # 23 hours
    start, end = _epoch(day), _epoch(day + timedelta(days=1))
    state = WindowState(SIZES, grace_seconds=0, calendar=CALENDAR)
    state.add_all([_reading(1, start), _reading(2, end - 60)])
    state.flush()
    state.add_all([_reading(3, end + 60)])
    finals = {(u.size, u.start): u.total for u in state.flush() if u.final}
    assert finals[(DAY, start)] == 2.0  # closed by the reading of the next local day
    assert (DAY, end) not in finals


def test_the_year_to_date_is_the_local_year() -> None:
    new_year = _epoch(date(2027, 1, 1))  # 2026-12-31 23:00 UTC
    state = WindowState(SIZES, grace_seconds=0, calendar=CALENDAR)
    state.add_all([_reading(1, new_year - 60), _reading(2, new_year + 60)])
    ytd = {u.start: u.total for u in state.flush() if u.size == 0}
    assert ytd == {_epoch(date(2026, 1, 1)): 1.0, new_year: 1.0}


def _utc_state_with_a_day_counted() -> tuple[WindowState, int]:
    utc_day = int(datetime(2026, 12, 6, tzinfo=UTC).timestamp())
    state = WindowState(SIZES, grace_seconds=0)
    state.add_all([_reading(n, utc_day + 3600 * n) for n in range(20)])  # 00:00 to 19:00 UTC
    state.flush()
    return state, utc_day


def test_a_checkpoint_of_utc_days_goes_on_with_local_days_after_the_days_it_counted() -> None:
    state, utc_day = _utc_state_with_a_day_counted()
    restored = decode(encode(PartitionState(state)), 0, CALENDAR).windows
    calendar = restored.calendar
    assert isinstance(calendar, SwitchedCalendar)
    # The open UTC day stays a UTC day; local days begin at the first local midnight after it.
    assert calendar.day(utc_day + 3600) == (utc_day, utc_day + DAY)
    local_next = _epoch(date(2026, 12, 8))  # 2026-12-07 23:00 UTC
    assert calendar.since == local_next
    assert calendar.day(utc_day + DAY + 3600) == (utc_day + DAY, local_next)  # 23 hours, once
    assert calendar.day(local_next + 3600) == CALENDAR.day(local_next + 3600)
    # Encoded and read again, the switch is the same.
    again = decode(encode(PartitionState(restored)), 0, CALENDAR).windows.calendar
    assert again.name == calendar.name == f"UTC|{local_next}|Europe/Paris"
    # Readings of the open UTC day still count in it; one after the switch in a local day.
    restored.add_all([_reading(100, utc_day + 20 * 3600), _reading(101, local_next + 60)])
    restored.add_all([_reading(102, local_next + 2 * DAY)])
    finals = {(u.size, u.start): u.total for u in restored.flush() if u.final and u.size == DAY}
    assert finals[(DAY, utc_day)] == 21.0
    assert finals[(DAY, local_next)] == 1.0


def test_a_fresh_state_or_one_counted_under_the_zone_is_not_switched() -> None:
    empty = decode(encode(PartitionState(WindowState(SIZES, grace_seconds=0))), 0, CALENDAR)
    assert empty.windows.calendar.name == "Europe/Paris"
    local = WindowState(SIZES, grace_seconds=0, calendar=CALENDAR)
    local.add_all([_reading(1, _epoch(date(2026, 12, 6), 5))])
    local.flush()
    assert decode(encode(PartitionState(local)), 0, CALENDAR).windows.calendar.name == "Europe/Paris"


def test_a_format_8_checkpoint_counted_utc_days() -> None:
    state, _ = _utc_state_with_a_day_counted()
    doc = json.loads(zlib.decompress(encode(PartitionState(state))))
    assert (FORMAT, doc.pop("calendar")) == (9, "UTC")
    doc["format"] = 8
    old = zlib.compress(json.dumps(doc).encode())
    assert decode(old, 0).windows.calendar.name == "UTC"
    local_next = _epoch(date(2026, 12, 8))
    assert decode(old, 0, CALENDAR).windows.calendar.name == f"UTC|{local_next}|Europe/Paris"


@given(
    st.integers(min_value=86_400, max_value=4_000_000_000),
    st.sampled_from(["UTC", "Europe/Paris", "Asia/Kathmandu"]),
)
def test_a_switch_cuts_no_day_already_counted_and_leaves_no_gap(after: int, zone: str) -> None:
    before = ZoneCalendar("America/New_York")
    calendar = switched(before, ZoneCalendar(zone), after)
    assert isinstance(calendar, SwitchedCalendar)
    assert calendar.day(after) == before.day(after)  # the day holding the last instant counted
    assert calendar_named(calendar.name).name == calendar.name
    ts = before.day(after)[0]
    while ts < calendar.since + 3 * DAY:  # consecutive days tile time across the switch
        start, end = calendar.day(ts)
        assert start == ts and end > start
        ts = end


def test_a_month_is_the_sum_of_its_local_days_and_ends_at_local_midnight() -> None:
    start, end = _epoch(date(2026, 10, 1)), _epoch(date(2026, 11, 1))
    assert CALENDAR.month(start + 86400) == (start, end)
    assert end - start == (31 * 24 + 1) * 3600  # October's 25-hour day
    state = WindowState((60, 900, 3600, DAY, MONTH), grace_seconds=0, calendar=CALENDAR)
    state.add_all([_reading(n, ts) for n, ts in enumerate(range(start, end, 3600))])
    updates = state.flush()
    state.add_all([_reading(10_000, end + 60)])  # closes October
    finals = {(u.size, u.start): u.total for u in updates + state.flush() if u.final}
    assert finals[(MONTH, start)] == 745.0
    assert sum(v for (size, s), v in finals.items() if size == DAY and start <= s < end) == 745.0
    october = WindowUpdate("energy_consumed_kwh", DIMS, MONTH, start, 745.0, 745, True, 0)
    published = to_indicator_update(october, datetime.now(UTC), CALENDAR)
    assert (published.window, published.window_end) == ("1mo", datetime.fromtimestamp(end, UTC))


def test_a_checkpoint_from_before_months_counts_from_the_next_month_whole() -> None:
    state, _ = _utc_state_with_a_day_counted()  # 6 December 2026, UTC days, no month windows
    doc = json.loads(zlib.decompress(encode(PartitionState(state))))
    doc["format"], doc["sizes"] = 8, [60, 900, 3600, DAY]
    for key in ("calendar", "months_from"):
        del doc[key]
    restored = decode(zlib.compress(json.dumps(doc).encode()), 0, CALENDAR).windows
    january = _epoch(date(2027, 1, 1))
    assert MONTH in restored.sizes and restored.months_from == january
    restored.add_all([_reading(200, _epoch(date(2026, 12, 20), 12)), _reading(201, january + 3600)])
    months = {u.start: u.total for u in restored.flush() if u.size == MONTH}
    assert months == {january: 1.0}  # December, counted from its 6th, is no month's total
    again = decode(encode(PartitionState(restored)), 0, CALENDAR).windows
    assert again.months_from == january


def test_the_month_of_a_switch_is_two_windows_that_tile_it() -> None:
    switch = SwitchedCalendar(UTC_CALENDAR, _epoch(date(2026, 12, 8)), CALENDAR)
    utc_december = int(datetime(2026, 12, 1, tzinfo=UTC).timestamp())
    assert switch.month(utc_december + DAY) == (utc_december, switch.since)
    assert switch.month(switch.since + DAY) == (switch.since, _epoch(date(2027, 1, 1)))
