"""An index that arrives after a later one of its meter counts as if the indexes had come in
order: it splits the delta it falls in (streams/indicators/meter_indexes.py)."""

from __future__ import annotations

import json
import random
import zlib
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.indicators.closed_windows import MemoryClosedWindows
from streams.indicators.engine import IndicatorPartition, Publication, ValidRecord
from streams.indicators.index_deltas import Consumption, IndexAnomaly, IndexState, index_delta
from streams.indicators.meter_indexes import (
    INDEX_HISTORY_MAX,
    INDEX_HISTORY_SECONDS,
    MeterIndexes,
    Recount,
    meter_terms,
    place_index,
)
from streams.indicators.window_state import WindowState
from streams.indicators.window_state_codec import PartitionState, decode, encode
from streams.validation.engine import VALID_ARRAY
from tests.contract.samples import REFERENCE
from tests.energy_readings import energy_reading

T0 = datetime(2026, 11, 30, 0, tzinfo=UTC)
NOW = datetime(2026, 12, 3, 12, tzinfo=UTC)
LIMIT_KW = 36.0  # a residential electricity meter's (reference/data/plausibility.toml)
HOME = meter_terms("17300", "residential", "electricity")


def _at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def _history(*points: tuple[float, float]) -> MeterIndexes:
    """A meter's indexes placed in order from (hours after T0, kWh) pairs."""
    (first_hours, first_kwh), *rest = points
    history = MeterIndexes.starting(first_kwh, _at(first_hours), HOME)
    for hours, kwh in rest:
        place_index(history, kwh, _at(hours), LIMIT_KW, HOME)
    return history


def test_an_index_between_two_counted_ones_splits_their_delta() -> None:
    history = _history((0, 1000.0), (2, 1010.0))
    placed = place_index(history, 1004.0, _at(1), LIMIT_KW, HOME)
    assert placed.own == Consumption(4.0, _at(0), _at(1))
    assert placed.recount == Recount(_at(2), 10.0, 6.0)
    assert (history.ats, history.kwh, history.counted) == (
        [_at(0), _at(1), _at(2)],
        [1000.0, 1004.0, 1010.0],
        [None, 4.0, 6.0],
    )


def test_a_late_index_below_its_predecessor_is_a_reset_and_the_next_delta_is_judged_from_it() -> None:
    history = _history((0, 1000.0), (2, 1010.0))
    placed = place_index(history, 500.0, _at(1), LIMIT_KW, HOME)
    assert isinstance(placed.own, IndexAnomaly) and placed.own.kind == "reset"
    # In order, 500 -> 1010 in an hour is beyond 36 kW: a jump, nothing counted at 2 h.
    in_order = index_delta(IndexState(500.0, _at(1)), 1010.0, _at(2), LIMIT_KW)
    assert isinstance(in_order, IndexAnomaly) and in_order.kind == "jump"
    assert placed.recount == Recount(_at(2), 10.0, None)


def test_an_index_at_a_time_already_counted_is_out_of_order_and_changes_nothing() -> None:
    history = _history((0, 1000.0), (2, 1010.0))
    placed = place_index(history, 1003.0, _at(2), LIMIT_KW, HOME)
    assert isinstance(placed.own, IndexAnomaly) and placed.own.kind == "out_of_order"
    assert placed.recount is None and history.kwh == [1000.0, 1010.0]


def test_an_index_before_the_meter_s_first_becomes_its_baseline() -> None:
    history = _history((1, 1000.0), (2, 1010.0))
    placed = place_index(history, 995.0, _at(0), LIMIT_KW, HOME)
    assert isinstance(placed.own, IndexAnomaly) and placed.own.kind == "first"
    assert placed.recount == Recount(_at(1), None, 5.0)


def test_indexes_beyond_the_horizon_are_forgotten_and_one_older_than_those_kept_is_out_of_order() -> None:
    day = INDEX_HISTORY_SECONDS / 3600 / 2
    history = _history((0, 1000.0), (day, 1100.0), (2 * day + 1, 1200.0))
    assert history.ats == [_at(day), _at(2 * day + 1)] and not history.complete
    placed = place_index(history, 1050.0, _at(day / 2), LIMIT_KW, HOME)
    assert isinstance(placed.own, IndexAnomaly) and placed.own.kind == "out_of_order"
    assert "older than the indexes kept" in placed.own.message
    assert history.kwh == [1100.0, 1200.0]


def test_at_most_so_many_indexes_are_kept_per_meter() -> None:
    history = MeterIndexes.starting(0.0, T0, HOME)
    for minute in range(1, INDEX_HISTORY_MAX + 10):
        place_index(history, minute * 0.1, T0 + timedelta(minutes=minute), LIMIT_KW, HOME)
    assert len(history.ats) == INDEX_HISTORY_MAX and history.ats[-1] == T0 + timedelta(
        minutes=INDEX_HISTORY_MAX + 9
    )


OFFICE = meter_terms("17300", "tertiary", "electricity")


def test_a_late_index_under_other_terms_is_refused_and_moves_nothing() -> None:
    """Taken back under its own terms, the delta it splits would leave a series that never had it."""
    history = _history((0, 1000.0), (2, 1010.0))
    placed = place_index(history, 1004.0, _at(1), LIMIT_KW, OFFICE)
    assert isinstance(placed.own, IndexAnomaly) and placed.own.kind == "terms_changed"
    assert "17300|residential|electricity" in placed.own.message and "17300|tertiary" in placed.own.message
    assert placed.recount is None and history.kwh == [1000.0, 1010.0] and history.counted == [None, 10.0]


def test_an_index_in_order_under_new_terms_counts_and_late_ones_split_only_deltas_counted_under_them() -> (
    None
):
    history = _history((0, 1000.0), (2, 1010.0))
    moved = place_index(history, 1020.0, _at(4), LIMIT_KW, OFFICE)  # the registry moved the meter
    assert moved.own == Consumption(10.0, _at(2), _at(4)) and (history.terms, history.terms_since) == (
        OFFICE,
        _at(4),
    )
    before_the_move = place_index(history, 1004.0, _at(1), LIMIT_KW, OFFICE)  # splits the 2 h delta: HOME's
    assert isinstance(before_the_move.own, IndexAnomaly) and before_the_move.own.kind == "terms_changed"
    after_the_move = place_index(history, 1015.0, _at(3), LIMIT_KW, OFFICE)  # splits the 4 h delta: OFFICE's
    assert after_the_move.own == Consumption(5.0, _at(2), _at(3))
    assert after_the_move.recount == Recount(_at(4), 10.0, 5.0)


def test_kept_indexes_of_unknown_terms_trust_only_the_delta_an_index_in_order_counts() -> None:
    """Format 7 kept no terms: a meter whose first index after the upgrade comes in order under
    new terms must not have its older deltas split as if counted under them."""
    history = MeterIndexes.from_doc(_history((0, 1000.0), (1, 1005.0), (2, 1012.0)).to_doc()[:4])
    moved = place_index(history, 1020.0, _at(3), LIMIT_KW, OFFICE)
    assert moved.own == Consumption(8.0, _at(2), _at(3)) and history.terms_since == _at(3)
    late = place_index(history, 1003.0, _at(0.5), LIMIT_KW, OFFICE)
    assert isinstance(late.own, IndexAnomaly) and late.own.kind == "terms_changed"
    assert history.counted == [None, 5.0, 7.0, 8.0]


def test_indexes_kept_before_terms_were_take_the_next_index_s_terms() -> None:
    history = _history((0, 1000.0), (2, 1010.0))
    doc = history.to_doc()[:4]  # as checkpoint format 7 wrote them
    older = MeterIndexes.from_doc(doc)
    assert older.terms is None and older.terms_since is None
    placed = place_index(older, 1004.0, _at(1), LIMIT_KW, HOME)
    assert placed.recount == Recount(_at(2), 10.0, 6.0)
    assert (older.terms, older.terms_since) == (HOME, _at(0))
    assert MeterIndexes.from_doc(older.to_doc()) == older


def test_a_checkpoint_keeps_each_meter_s_indexes_and_an_older_one_its_last_index() -> None:
    state = PartitionState(WindowState((60, 900), grace_seconds=300))
    state.indexes["m1"] = _history((0, 1000.0), (1, 1002.5), (2, 1003.0))
    restored = decode(encode(state), 0)
    assert restored.indexes == state.indexes
    doc = json.loads(zlib.decompress(encode(state)))
    doc["format"] = 6
    doc["indexes"] = [["m1", 1003.0, _at(2).timestamp()]]
    older = decode(json.dumps(doc).encode(), 0).indexes["m1"]
    assert (older.ats, older.kwh, older.counted, older.complete) == ([_at(2)], [1003.0], [None], False)


# In order or not, the same windows: the property the split exists for.

TOPIC = "zc.valid.energy"


def _index_event(n: int, minutes: int, kwh: float) -> dict[str, Any]:
    return energy_reading(
        "partner-1", f"i{n}", T0 + timedelta(minutes=minutes), kind="index", quantity=kwh, unit="kWh",
        interval_start=None,
    )  # fmt: skip


def _finals(events: list[dict[str, Any]], per_record: int, flush_every: int) -> dict[tuple[Any, ...], float]:
    """The last value published per window of the meter's series (those left at zero
    dropped: a window nothing was counted in, or taken back to nothing, whatever the order)."""
    engine: IndicatorPartition[int] = IndicatorPartition(TOPIC, 0, grace_seconds=300, checkpoint_seconds=5.0)
    adapter = VALID_ARRAY["energy"]
    last: dict[tuple[Any, ...], float] = {}

    def publish(publication: Publication[int]) -> None:
        for _, value in publication.updates:
            u = json.loads(value)
            if "sector" not in u["dimensions"]:
                continue  # the producer's activity: when it was last heard, not the meter's figures
            key = (
                u["indicator"],
                json.dumps(u["dimensions"], sort_keys=True),
                u["window"],
                u["window_start"],
            )
            last[key] = u["value"]

    for offset, start in enumerate(range(0, len(events), per_record)):
        batch = events[start : start + per_record]
        value = adapter.dump_json(adapter.validate_json(json.dumps(batch)), by_alias=True)
        engine.apply(ValidRecord(TOPIC, 0, offset, b"17300", value), REFERENCE, NOW, offset)
        if offset % flush_every == 0:
            publish(engine.flush(NOW, float(offset), REFERENCE))
    publish(engine.flush(NOW, 1e6, REFERENCE, checkpoint_now=True))
    return {key: round(v, 9) for key, v in last.items() if v != 0}


@settings(max_examples=80, deadline=None)
@given(
    steps=st.lists(
        st.tuples(
            st.integers(1, 90),  # minutes since the meter's previous index
            st.sampled_from(["consume", "consume", "consume", "reset", "jump", "idle"]),
        ),
        min_size=2,
        max_size=40,
    ),
    seed=st.integers(0, 2**32 - 1),
    per_record=st.integers(1, 4),
    flush_every=st.integers(1, 5),
)
def test_late_indexes_give_the_windows_their_order_would_have(
    steps: list[tuple[int, str]], seed: int, per_record: int, flush_every: int
) -> None:
    """Whatever order a meter's indexes arrive in, every window ends with the sum and count
    it has when they arrive in event-time order: resets and jumps included, judged between
    neighbours in time (and all within the kept horizon here)."""
    rng = random.Random(seed)
    events, minutes, kwh = [], 0, 5000.0
    for n, (gap, what) in enumerate(steps):
        minutes += gap
        if what == "consume":
            kwh = round(kwh + rng.uniform(0, 0.5) * gap, 3)  # at most 30 kW
        elif what == "reset":
            kwh = round(rng.uniform(0, 100), 3)
        elif what == "jump":
            kwh = round(kwh + 50 * gap, 3)  # 3 000 kW
        events.append(_index_event(n, minutes, kwh))
    shuffled = events[:]
    rng.shuffle(shuffled)
    assert _finals(shuffled, per_record, flush_every) == _finals(events, per_record, flush_every)


@settings(max_examples=60, deadline=None)
@given(
    sectors=st.lists(st.sampled_from(["residential", "tertiary"]), min_size=2, max_size=30),
    seed=st.integers(0, 2**32 - 1),
    per_record=st.integers(1, 3),
)
def test_no_series_loses_what_it_never_had_whatever_the_terms_a_meter_s_readings_carry(
    sectors: list[str], seed: int, per_record: int
) -> None:
    """Two fleets gave one meter id two sectors (a CI run: La Rochelle's residential hour fell
    4.8 kWh below the demo's own readings). Every delta counted is positive and a take-back
    only removes what its series counted: no window of any series may end below zero."""
    rng = random.Random(seed)
    events, kwh = [], 5000.0
    for n, sector in enumerate(sectors):
        kwh = round(kwh + rng.uniform(0, 5), 3) if rng.random() < 0.8 else round(rng.uniform(0, 9000), 3)
        events.append(_index_event(n, 15 * (n + 1), kwh) | {"sector": sector})
    rng.shuffle(events)
    finals = _finals(events, per_record, 1)
    assert all(value > 0 for value in finals.values()), {k: v for k, v in finals.items() if v < 0}


def test_a_late_index_corrects_closed_windows_and_nothing_is_counted_twice() -> None:
    """A device sends its live index, then its backlog: the backlog's quarter-hours are
    counted where they belong, the live reading's window gives back what they took."""
    live = _index_event(0, 0, 1000.0), _index_event(1, 180, 1009.0)
    backlog = [_index_event(2 + k, 15 * (k + 1), 1000.0 + 0.75 * (k + 1)) for k in range(11)]
    finals = _finals([*live, *backlog], 1, 1)
    hourly = {
        key[3][11:16]: value
        for key, value in finals.items()
        if key[0] == "energy_consumed_kwh" and key[2] == "1h"
    }
    # 0.75 kWh per quarter-hour, counted at each index's time: 3 at 01:00 and 02:00 (00:15 to
    # 00:45 in hour 00), the last three and the live one's 0.75 in hour 03.
    assert hourly == {"00:00": 2.25, "01:00": 3.0, "02:00": 3.0, "03:00": 0.75}


# Meters' indexes live in the store of closed windows: a checkpoint carries only those changed.


def _indexes_of(engine: IndicatorPartition[int]) -> dict[str, list[Any]]:
    return {m: h.to_doc() for m, h in engine.state.indexes.items()}


def _apply_index(engine: IndicatorPartition[int], offset: int, meter: str, minutes: int, kwh: float) -> None:
    event = _index_event(offset, minutes, kwh) | {"meter_id": meter}
    value = VALID_ARRAY["energy"].dump_json(
        VALID_ARRAY["energy"].validate_json(json.dumps([event])), by_alias=True
    )
    engine.apply(ValidRecord(TOPIC, 0, offset, b"17300", value), REFERENCE, NOW, offset)


def test_a_checkpoint_carries_the_meters_changed_since_the_store_s_last_commit_and_a_restore_gets_all() -> (
    None
):
    store = MemoryClosedWindows()
    engine: IndicatorPartition[int] = IndicatorPartition(
        TOPIC, 0, grace_seconds=300, checkpoint_seconds=0, store=store
    )
    _apply_index(engine, 0, "m1", 0, 1000.0)
    _apply_index(engine, 1, "m2", 0, 2000.0)
    first = engine.flush(NOW, 0.0, REFERENCE).checkpoint
    assert first is not None and [row[0] for row in json.loads(zlib.decompress(first[1]))["indexes"]] == [
        "m1",
        "m2",
    ]
    engine.checkpoint_delivered()
    _apply_index(engine, 2, "m1", 15, 1001.0)
    second = engine.flush(NOW, 1.0, REFERENCE).checkpoint
    assert second is not None and [row[0] for row in json.loads(zlib.decompress(second[1]))["indexes"]] == [
        "m1"
    ]
    engine.checkpoint_delivered()
    restored: IndicatorPartition[int] = IndicatorPartition(
        TOPIC, 0, second[1], grace_seconds=300, checkpoint_seconds=0, store=store
    )
    assert _indexes_of(restored) == _indexes_of(engine)

    # A crash after the checkpoint is in Kafka, before the store commits it: the restore commits
    # what the checkpoint carries, and a checkpoint left undelivered is carried again by the next.
    _apply_index(engine, 3, "m2", 15, 2001.0)
    third = engine.flush(NOW, 2.0, REFERENCE).checkpoint
    _apply_index(engine, 4, "m1", 30, 1002.0)
    fourth = engine.flush(NOW, 3.0, REFERENCE).checkpoint
    assert third is not None and fourth is not None
    assert [row[0] for row in json.loads(zlib.decompress(fourth[1]))["indexes"]] == ["m1", "m2"]
    after_crash: IndicatorPartition[int] = IndicatorPartition(
        TOPIC, 0, fourth[1], grace_seconds=300, checkpoint_seconds=0, store=store
    )
    assert _indexes_of(after_crash) == _indexes_of(engine)
    assert store.meter_indexes().keys() == {"m1", "m2"}
