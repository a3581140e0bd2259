"""What the window state keeps, how long, and what it gives back: closed windows, checkpoints,
late readings between a day's close and its flush, and the published models."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from reference.loader import load_reference
from schemas.indicator import IndicatorUpdate
from streams.indicators.catalogue import to_indicator_update
from streams.indicators.closed_windows import MemoryClosedWindows
from streams.indicators.enrichment import Contribution, Measure
from streams.indicators.window_state import DAY, LONG_HORIZON_SECONDS, Accumulator, WindowState, WindowUpdate
from streams.indicators.window_state_codec import decode

T = datetime(2026, 3, 10, 12, tzinfo=UTC)
DIMS = (("carrier", "electricity"), ("commune", "17300"), ("sector", "residential"))


def _reading(event_id: str, at: datetime, kwh: float) -> Contribution:
    return Contribution(event_id, "p", at, (Measure("energy_consumed_kwh", DIMS, kwh),), "p")


def _day(updates: list[WindowUpdate], start: int) -> WindowUpdate:
    return [u for u in updates if u.size == DAY and u.start == start][-1]


def test_closed_windows_are_kept_as_long_as_validation_accepts_readings_for_them() -> None:
    bounds = load_reference().bounds.time
    accepted = bounds.max_past_days * DAY + bounds.max_future_seconds + DAY  # + the day's length
    assert accepted <= LONG_HORIZON_SECONDS


def test_a_day_older_than_validation_accepts_is_forgotten_and_no_longer_revised() -> None:
    store = MemoryClosedWindows()
    state = WindowState(sizes=(3600, DAY), grace_seconds=0, store=store)
    day = int(T.timestamp()) // DAY * DAY
    state.add_all([_reading("a", T, 1.0), _reading("b", T + timedelta(days=2), 1.0)])
    state.flush()
    state.commit(state.carried_version(), state.watermark)
    assert store.get(("energy_consumed_kwh", DIMS, DAY, day)) is not None and not state.closed
    # A late reading for a kept day revises it, read back from the store.
    state.add(_reading("late", T, 2.0))
    assert _day(state.flush(), day).total == 3.0
    # Once the watermark is far enough ahead, the day is forgotten by the next commit...
    far = T + timedelta(seconds=LONG_HORIZON_SECONDS + 2 * DAY)
    state.add_all([_reading("far", far, 1.0)])
    state.flush()
    state.commit(state.carried_version(), state.watermark)
    assert store.get(("energy_consumed_kwh", DIMS, DAY, day)) is None
    assert len(store) == 2  # the hour and the day of "b", within the horizon
    # ...and a reading that reaches it anyway (bounds widened) counts in its year only: a
    # partial day would overwrite the published whole one.
    assert state.add(_reading("too-late", T, 5.0)) == "late"
    updates = state.flush()
    assert not [u for u in updates if u.size == DAY and u.start == day]
    assert [u.total for u in updates if u.size == 0] == [1.0 + 1.0 + 2.0 + 5.0]  # 2026: far is 2027
    assert state.past_horizon == 2  # its hour and its day


def test_a_late_reading_between_the_close_of_its_day_and_the_flush_is_in_the_final_day() -> None:
    # One batch: the next day's reading closes the day on event time, then a late reading
    # for that day arrives before the flush has emitted the day final.
    state = WindowState(sizes=(3600, DAY), grace_seconds=300)
    day = int(T.timestamp()) // DAY * DAY
    state.add_all(
        [_reading("a", T, 1.0), _reading("next", T + timedelta(days=1), 1.0), _reading("late", T, 2.0)]
    )
    final = _day(state.flush(), day)
    assert (final.total, final.count, final.final) == (3.0, 2, True)
    state.add(_reading("later", T, 4.0))
    revised = _day(state.flush(), day)
    assert (revised.total, revised.count, revised.revision) == (7.0, 3, 1)


def test_a_checkpoint_of_format_2_is_read_with_its_indexes() -> None:
    start = int(T.timestamp()) // DAY * DAY
    dims = [list(pair) for pair in DIMS]
    blob = {
        "format": 2, "offset": 41, "source_offsets": [[0, 7]], "sizes": [3600, DAY], "grace": 0,
        "watermark": start + DAY + 10, "counted": 2, "duplicates": 0, "late": 0,
        "open": [["energy_consumed_kwh", dims, 3600, start + DAY, 1.0, 1, 0]],
        "closed_days": [["energy_consumed_kwh", dims, DAY, start, 2.5, 1, 0]],
        "ytd": [["energy_consumed_kwh", dims, 2026, 3.5, 2]],
        "seen": [["a", start], ["b", start + DAY]], "indexes": [],
    }  # fmt: skip
    restored = decode(json.dumps(blob).encode(), 0)
    windows = restored.windows
    assert (restored.offset, restored.source_offsets) == (41, {0: 7})
    assert list(windows.seen) == []  # ids without their producer (before format 5): forgotten
    # Its closed days are the first commit of a new lineage: a store another one left is wiped.
    store = MemoryClosedWindows()
    other = WindowState(sizes=(3600, DAY), grace_seconds=0, store=store)
    other.closed[("energy_consumed_kwh", DIMS, DAY, start - DAY)] = Accumulator(9, 1)
    other.commit(other.carried_version(), other.watermark)
    windows.attach(store)
    assert windows.closed_in_slot(("energy_consumed_kwh", "17300", DAY, start)) == [
        (("energy_consumed_kwh", DIMS, DAY, start), Accumulator(2_500_000_000, 1, 0))
    ]
    assert store.get(("energy_consumed_kwh", DIMS, DAY, start - DAY)) is None
    assert windows.add(_reading("c", T, 1.0)) == "late"
    assert _day(windows.flush(), start).total == 3.5


def test_published_models_equal_validated_ones() -> None:
    now = datetime(2026, 3, 10, 12, 0, 1, tzinfo=UTC)
    for update in (
        WindowUpdate("energy_consumed_kwh", DIMS, 60, 1773144000, 1.25, 3, False, 0),
        WindowUpdate(
            "parking_occupancy_ratio", (("car_park", "p1"), ("commune", "17300")), 900, 0, 1.5, 2, True, 2
        ),
        WindowUpdate("emissions_kgco2e", DIMS, 0, 1767225600, 7.0, 9, False, 0),
    ):
        fast = to_indicator_update(update, now)
        fields = fast.model_dump(exclude={"schema_name", "schema_version"})
        validated = IndicatorUpdate(**fields)
        assert fast == validated
        assert fast.model_dump_json(by_alias=True) == validated.model_dump_json(by_alias=True)
        assert fast.model_fields_set == validated.model_fields_set
        assert list(fast.__dict__) == list(validated.__dict__)
