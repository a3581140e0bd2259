"""Enrichment (factors, formulas) and window state (event time, lateness, duplicates), by hand."""

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter

from reference.loader import load_reference
from schemas.energy import EnergyReading
from schemas.mobility import MOBILITY_ADAPTER
from streams.indicators.enrichment import Contribution, Measure, NoFactor, enrich
from streams.indicators.window_assignment import epoch_seconds, window_start
from streams.indicators.window_state import DAY, WindowState

REF = load_reference()
T = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def _meter(
    event_id: str, at: datetime, wh: float, carrier: str = "electricity", unit: str = "Wh"
) -> EnergyReading:
    return EnergyReading.model_validate(
        {
            "event_id": event_id,
            "producer_id": "enedis",
            "event_time": at.isoformat(),
            "meter_id": "elec-17300-0001",
            "commune": "17300",
            "sector": "residential",
            "carrier": carrier,
            "quantity": wh,
            "unit": unit,
            "kind": "interval",
            "interval_start": (at - timedelta(minutes=15)).isoformat(),
        },
        strict=False,
    )


def test_electricity_emissions_use_the_2022_consumption_mix() -> None:
    # 1 200 Wh = 1.2 kWh; 1.2 kWh x 0.0520 kgCO2e/kWh = 0.0624 kgCO2e.
    out = enrich(_meter("e1", T, 1200), REF)
    assert isinstance(out, Contribution)
    by_name = {m.indicator: m for m in out.measures}
    assert by_name["energy_consumed_kwh"].value == pytest.approx(1.2)
    assert by_name["emissions_kgco2e"].value == pytest.approx(0.0624)
    assert dict(by_name["emissions_kgco2e"].dimensions) == {
        "carrier": "electricity", "commune": "17300", "sector": "residential",
    }  # fmt: skip


def test_no_factor_for_the_year_is_a_reason_not_a_zero() -> None:
    old = _meter("e-old", datetime(2015, 1, 1, tzinfo=UTC), 1000)
    out = enrich(old, REF)
    assert isinstance(out, NoFactor)
    assert "2015" in out.message and out.path == "carrier"


def test_bus_trip_counts_passenger_km_and_their_emissions() -> None:
    trip = MOBILITY_ADAPTER.validate_python(
        {
            "event_id": "b1",
            "producer_id": "yelo",
            "event_time": T.isoformat(),
            "device_id": "bus-17300-0001",
            "commune": "17300",
            "kind": "transit_trip",
            "mode": "bus",
            "line": "L1",
            "started_at": (T - timedelta(minutes=30)).isoformat(),
            "distance_km": 12.5,
            "passengers": 20,
        },
        strict=False,
    )
    out = enrich(trip, REF)
    assert isinstance(out, Contribution)
    by_name = {m.indicator: m.value for m in out.measures}
    # 12.5 km x 20 passengers = 250 pkm; 250 x 0.1224 kgCO2e/pkm = 30.6 kgCO2e.
    assert by_name == pytest.approx({"passenger_km": 250.0, "mobility_emissions_kgco2e": 30.6})


def _contribution(event_id: str, at: datetime, value: float) -> Contribution:
    return Contribution(
        event_id, "p", at, (Measure("energy_consumed_kwh", (("commune", "17300"),), value),), "p"
    )


def _values(updates: list, size: int) -> dict[tuple[int, bool], float]:  # type: ignore[type-arg]
    return {(u.start, u.final): u.total for u in updates if u.size == size}


def test_out_of_order_within_grace_updates_its_window() -> None:
    state = WindowState(sizes=(60, DAY), grace_seconds=30)
    state.add(_contribution("a", T + timedelta(seconds=10), 1.0))
    state.add(_contribution("b", T + timedelta(seconds=70), 2.0))  # next minute, watermark 12:01:10
    state.add(_contribution("c", T + timedelta(seconds=20), 4.0))  # back in 12:00, within grace
    updates = state.flush()
    minute = int(T.timestamp())
    assert _values(updates, 60)[(minute, False)] == 5.0  # 1 + 4
    assert _values(updates, 60)[(minute + 60, False)] == 2.0


def test_window_closes_on_event_time_and_a_late_event_corrects_it_with_a_revision() -> None:
    state = WindowState(sizes=(60, DAY), grace_seconds=30)
    minute = int(T.timestamp())
    state.add(_contribution("a", T + timedelta(seconds=10), 1.0))
    state.add(_contribution("b", T + timedelta(seconds=95), 2.0))  # watermark 12:01:35 > 12:01:00 + 30 s
    first = state.flush()
    assert _values(first, 60)[(minute, True)] == 1.0  # closed, final
    assert state.add(_contribution("late", T + timedelta(seconds=5), 8.0)) == "late"
    second = state.flush()
    corrected = [u for u in second if u.size == 60 and u.start == minute]
    assert [(u.total, u.count, u.final, u.revision) for u in corrected] == [(9.0, 2, True, 1)]
    day = window_start(T, DAY)
    assert _values(second, DAY)[(day, False)] == 11.0  # 1 + 2 + 8: the day still open counts it
    ytd = [u for u in second if u.size == 0]
    assert ytd[0].total == 11.0
    state.add(_contribution("later", T + timedelta(seconds=6), 0.5))
    state.add(_contribution("latest", T + timedelta(seconds=7), 0.25))
    third = [u for u in state.flush() if u.size == 60 and u.start == minute]
    assert [(u.total, u.revision) for u in third] == [(9.75, 2)]  # one revision per flush that changes it


def test_a_late_event_past_the_minute_horizon_counts_in_the_larger_windows_only() -> None:
    state = WindowState(sizes=(60, 3600, DAY), grace_seconds=30)
    minute, hour = int(T.timestamp()), window_start(T, 3600)
    state.add(_contribution("a", T + timedelta(seconds=10), 1.0))
    state.flush()
    state.add(_contribution("b", T + timedelta(hours=49), 2.0))  # the first minute is 49 h behind
    state.flush()
    assert state.add(_contribution("late", T + timedelta(seconds=5), 8.0)) == "late"
    updates = state.flush()
    assert not [u for u in updates if u.size == 60 and u.start == minute]  # past its 48 h horizon
    assert [(u.total, u.revision) for u in updates if u.size == 3600 and u.start == hour] == [(9.0, 1)]
    assert state.past_horizon == 1


def test_late_event_after_the_day_closed_revises_the_day() -> None:
    state = WindowState(sizes=(DAY,), grace_seconds=60)
    day = window_start(T, DAY)
    state.add(_contribution("a", T, 3.0))
    state.add(_contribution("next-day", T + timedelta(days=1, minutes=5), 1.0))
    closed = state.flush()
    assert _values(closed, DAY)[(day, True)] == 3.0
    state.add(_contribution("late", T + timedelta(hours=1), 0.5))
    revised = [u for u in state.flush() if u.size == DAY and u.start == day]
    assert revised[0].total == 3.5 and revised[0].final and revised[0].revision == 1


def test_a_repeated_event_counts_once() -> None:
    state = WindowState(sizes=(60,), grace_seconds=30)
    assert state.add(_contribution("x", T, 1.0)) == "counted"
    assert state.add(_contribution("x", T, 1.0)) == "duplicate"
    assert _values(state.flush(), 60)[(int(T.timestamp()), False)] == 1.0


def test_same_input_in_any_order_gives_the_same_final_day() -> None:
    items = [_contribution(f"e{k}", T + timedelta(minutes=k), float(k)) for k in range(30)]
    totals = []
    for order in (items, list(reversed(items)), items[::2] + items[1::2]):
        state = WindowState(sizes=(900, DAY), grace_seconds=3600)
        state.add_all(order)
        state.add(_contribution("closer", T + timedelta(days=2), 0.0))
        updates = state.flush()
        totals.append(_values(updates, DAY)[(window_start(T, DAY), True)])
    assert totals == [sum(range(30))] * 3


def test_checkpoint_round_trip_gives_the_same_results_afterwards() -> None:
    from streams.indicators.window_state_codec import PartitionState, decode, encode

    items = [_contribution(f"e{k}", T + timedelta(minutes=7 * k), float(k)) for k in range(40)]
    straight = WindowState(sizes=(900, DAY), grace_seconds=600)
    straight.add_all(items)
    expected = straight.flush()

    first = WindowState(sizes=(900, DAY), grace_seconds=600)
    first.add_all(items[:25])
    head = first.flush()
    restored = decode(encode(PartitionState(first, offset=24, source_offsets={2: 7})), 0)
    assert restored.offset == 24
    restored.windows.add_all(items[25:])
    tail = restored.windows.flush()

    def last(updates: list) -> dict:  # type: ignore[type-arg]
        return {(u.indicator, u.size, u.start): (u.total, u.final) for u in updates}

    assert last(head) | last(tail) == last(expected)


def test_memory_of_event_ids_is_bounded() -> None:
    state = WindowState(sizes=(DAY,), grace_seconds=0, max_seen_ids=100)
    state.add_all(_contribution(f"e{k}", T, 1.0) for k in range(1000))
    assert len(state.seen) == 100
    assert state.add(_contribution("e999", T, 1.0)) == "duplicate"


def test_an_event_id_is_unique_per_producer_so_two_producers_may_share_one() -> None:
    """The contract: event ids are unique per producer (docs/contracts.md). Two producers'
    readings with one id are two readings; one producer's id twice is one (issue 19)."""
    ours = _contribution("e1", T, 1.0)
    theirs = Contribution("e1", "another-producer", T, ours.measures, "another-producer")
    one_by_one = WindowState(sizes=(DAY,), grace_seconds=0)
    assert [one_by_one.add(c) for c in (ours, theirs, ours)] == ["counted", "counted", "duplicate"]
    batched = WindowState(sizes=(DAY,), grace_seconds=0)
    batched.add_all([ours, theirs, ours])
    for state in (one_by_one, batched):
        (day,) = [u for u in state.flush() if u.size == DAY]
        assert (day.total, day.count, state.duplicates) == (2.0, 2, 1)


def test_batched_counting_equals_counting_one_by_one() -> None:
    import random

    rng = random.Random(7)
    items = [
        _contribution(
            f"e{rng.randint(0, 400)}", T + timedelta(seconds=rng.randint(-3000, 20000)), rng.random()
        )
        for _ in range(600)
    ]
    one_by_one = WindowState(sizes=(60, 900, 3600, DAY), grace_seconds=300)
    batched = WindowState(sizes=(60, 900, 3600, DAY), grace_seconds=300)
    out_single: list = []  # type: ignore[type-arg]
    out_batched: list = []  # type: ignore[type-arg]
    for k in range(0, len(items), 50):
        chunk = items[k : k + 50]
        for c in chunk:
            one_by_one.add(c)
        batched.add_all(chunk)
        out_single += one_by_one.flush()
        out_batched += batched.flush()

    def final(updates: list) -> dict:  # type: ignore[type-arg]
        return {(u.indicator, u.size, u.start): (round(u.total, 9), u.count, u.final) for u in updates}

    assert final(out_batched) == final(out_single)
    assert (batched.counted, batched.late, batched.duplicates) == (
        one_by_one.counted, one_by_one.late, one_by_one.duplicates,
    )  # fmt: skip


@settings(max_examples=500, deadline=None)
@given(
    st.datetimes(
        min_value=datetime(1960, 1, 1),
        max_value=datetime(2200, 1, 1),
        timezones=st.sampled_from([UTC, timezone(timedelta(hours=-5)), timezone(timedelta(0))]),
    )
)
def test_epoch_seconds_are_those_of_timestamp_for_every_instant(at: datetime) -> None:
    # The fast path reads the fields of UTC instants, as pydantic parses them and as Python
    # builds them; every other one goes through timestamp().
    parsed = TypeAdapter(datetime).validate_json(f'"{at.isoformat()}"'.replace("+00:00", "Z"))
    assert epoch_seconds(at) == int(at.timestamp())
    assert epoch_seconds(parsed) == int(parsed.timestamp())


def test_a_flush_says_how_many_windows_it_closed_for_the_metrics() -> None:
    state = WindowState(sizes=(60, DAY), grace_seconds=30)
    state.add(_contribution("a", T + timedelta(seconds=10), 1.0))
    state.flush()
    assert state.closed_by_last_flush == 0 and len(state.open) == 2  # its minute and its day
    state.add(_contribution("b", T + timedelta(seconds=95), 2.0))  # closes 12:00, opens 12:01
    state.flush()
    assert state.closed_by_last_flush == 1 and len(state.open) == 2
