"""Window sums are exact integers of billionths: the same readings give the same bits whatever
their order, their grouping into records and the moments of the flushes (which depend on
the wall clock). Float sums would differ in their last bits, so a replay after a crash
could publish a window that differs from the one published before it."""

from __future__ import annotations

import json
import random
import zlib
from datetime import UTC, datetime, timedelta
from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.indicators.enrichment import Contribution, Measure
from streams.indicators.window_state import DAY, NANOS_PER_UNIT, Accumulator, WindowState, WindowUpdate
from streams.indicators.window_state_codec import PartitionState, decode, encode

T0 = datetime(2026, 6, 30, 22, tzinfo=UTC)
SIZES = (60, 900, 3600, DAY)
SERIES = [
    (("carrier", "electricity"), ("commune", "17300"), ("sector", "residential")),
    (("carrier", "natural_gas"), ("commune", "17300"), ("sector", "tertiary")),
]


def _reading(n: int, seconds: float, series: int, value: float) -> Contribution:
    at = T0 + timedelta(seconds=seconds)
    return Contribution(f"e{n}", "p", at, (Measure("energy_consumed_kwh", SERIES[series], value),), "p")


def _last_values(updates: list[WindowUpdate]) -> dict[tuple[object, ...], tuple[float, int, bool]]:
    """The last published (total, count, final) of each window."""
    return {(u.indicator, u.dimensions, u.size, u.start): (u.total, u.count, u.final) for u in updates}


def _run(
    readings: list[Contribution], cuts: list[int], flushes: set[int], grace: int = 300
) -> list[WindowUpdate]:
    """``readings`` in records cut at ``cuts``, flushing after the records in ``flushes``."""
    state = WindowState(SIZES, grace_seconds=grace)
    updates: list[WindowUpdate] = []
    bounds = [0, *sorted(set(cuts)), len(readings)]
    for k, (a, b) in enumerate(pairwise(bounds)):
        state.add_all(readings[a:b])
        if k in flushes:
            updates += state.flush()
    return updates + state.flush()


values = st.floats(0.0001, 5000, allow_nan=False)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.floats(0, 7200), st.integers(0, 1), values), min_size=2, max_size=80),
    st.randoms(use_true_random=False),
)
def test_on_time_readings_in_any_order_give_the_same_bits(items: list, rng: random.Random) -> None:  # type: ignore[type-arg]
    readings = [_reading(n, s, series, v) for n, (s, series, v) in enumerate(items)]
    grace = 3 * 3600  # nothing is late: every order counts every reading in every window
    shuffled = readings[:]
    rng.shuffle(shuffled)
    cuts = [rng.randrange(len(readings)) for _ in range(5)]
    assert _last_values(_run(shuffled, cuts, {0, 2, 3}, grace)) == _last_values(
        _run(readings, [], set(), grace)
    )


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.floats(-1800, 90000), st.integers(0, 1), values), max_size=80),
    st.lists(st.integers(0, 79), max_size=12),
    st.sets(st.integers(0, 12)),
)
def test_records_and_flush_moments_do_not_change_any_window(items: list, cuts: list, flushes: set) -> None:  # type: ignore[type-arg]
    # Out of order, late (through the corrections path), across a day: the values the
    # windows end with are those of one record flushed once.
    readings = [_reading(n, s, series, v) for n, (s, series, v) in enumerate(items)]
    cuts = [c for c in cuts if c < len(readings)]
    assert _last_values(_run(readings, cuts, flushes)) == _last_values(_run(readings, [], set()))


def test_a_window_sums_to_the_nearest_billionth_of_its_unit() -> None:
    # 0.1 + 0.2 is 0.30000000000000004 in floats; in billionths it is 0.3.
    state = WindowState((60,), grace_seconds=0)
    state.add_all([_reading(0, 1, 0, 0.1), _reading(1, 2, 0, 0.2)])
    (minute, year) = state.flush()
    assert (minute.total, year.total) == (0.3, 0.3)
    assert state.open[(minute.indicator, minute.dimensions, 60, minute.start)].nanos == 300_000_000


def test_a_checkpoint_keeps_the_integer_sums_and_reads_those_of_earlier_formats() -> None:
    state = WindowState(SIZES, grace_seconds=300)
    state.add_all([_reading(0, 1, 0, 1 / 3), _reading(1, 2, 0, 2 / 3)])
    state.flush()
    blob = encode(PartitionState(state))
    doc = json.loads(zlib.decompress(blob))
    assert doc["format"] == 9
    assert {row[4] for row in doc["open"]} == {333_333_333 + 666_666_667}
    restored = decode(blob, 0).windows
    assert (restored.open, restored.ytd, list(restored.seen.items())) == (
        state.open, state.ytd, list(state.seen.items()),
    )  # fmt: skip
    assert restored.seen and all(isinstance(event, tuple) for event in restored.seen)

    # Before format 6, every closed day in the checkpoint: they become the closed windows to commit.
    doc["format"] = 5
    day = [row for row in doc["closed"] if row[2] == DAY]
    for key in ("closed", "epoch", "generation", "past_horizon"):
        del doc[key]
    doc["closed_days"] = day
    five = decode(json.dumps(doc).encode(), 0).windows
    assert five.closed == {
        (i, tuple(map(tuple, d)), s, st): Accumulator(n, c, r) for i, d, s, st, n, c, r in day
    }
    assert five.carried_version().generation == (1 if day else 0)
    # Before format 5, ids without their producer: the sums are read, the ids forgotten.
    doc["format"] = 4
    doc["seen"] = [[event_id for _producer, event_id in doc["seen"][0]], doc["seen"][1]]
    older = decode(json.dumps(doc).encode(), 0).windows
    assert (older.open, older.seen) == (state.open, {})
    doc["format"] = 3  # plain JSON, the event ids and their days in pairs
    doc["seen"] = [list(pair) for pair in zip(*doc["seen"], strict=True)]
    assert decode(json.dumps(doc).encode(), 0).windows.seen == {}
    doc["format"] = 2  # and float sums
    for row in doc["open"]:
        row[4] = row[4] / NANOS_PER_UNIT
    for row in doc["ytd"]:
        row[3] = row[3] / NANOS_PER_UNIT
    assert decode(json.dumps(doc).encode(), 0).windows.open == state.open


def test_a_checkpoint_refuses_a_state_with_readings_not_yet_flushed() -> None:
    state = WindowState(SIZES, grace_seconds=300)
    state.add_all([_reading(0, 1, 0, 1.0)])
    try:
        encode(PartitionState(state))
    except ValueError as exc:
        assert "flush" in str(exc)
    else:
        raise AssertionError("a pending reading would be lost from the checkpoint")
