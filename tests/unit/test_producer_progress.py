"""Windows close on the progress of the producers still sending (issue 20; engine.py,
invariant 8): a producer that delivers its readings later than another is not made late by
it, and windows it is still filling do not close under it; once it has been quiet for the
idle time it no longer holds anything."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

from streams.indicators.window_state_codec import decode
from tests.contract.samples import REFERENCE
from tests.energy_readings import energy_reading
from tests.unit.test_idle_windows import EPOCH_T0, T0, WALL, _apply, _energy, _engine, _kwh, _record

IDLE = 60.0


def _reading(producer: str, n: int, second: int) -> dict[str, Any]:
    """A one-minute interval of (100 + n) Wh of ``producer`` starting ``second`` s after T0."""
    start = T0 + timedelta(seconds=second)
    return energy_reading(
        producer, f"e{n}", start + timedelta(minutes=1), quantity=100 + n, interval_start=start.isoformat()
    )


def test_a_producer_a_day_behind_another_is_on_time_and_counted_in_every_window() -> None:
    """The distributor delivers each reading a day after the meters' live feed: with one
    watermark per partition every one of its readings would be late; with its own, none is."""
    engine = _engine(IDLE)
    outcomes: Counter[str] = Counter()
    clock = 0.0
    for k in range(30):  # a reading a minute from each, the distributor 24 h behind
        record = _record(
            k, _reading("live-feed", 2 * k, DAY_S + 60 * k), _reading("distributor", 2 * k + 1, 60 * k)
        )
        outcomes += _apply(engine, record)
        clock += 1
        engine.flush(WALL, clock, REFERENCE)
    assert outcomes == Counter(counted=60)
    # Both are still sending: the distributor's minutes close as its own progress passes
    # them (30 minutes sent, 5 of grace), the live feed's not before the distributor's do.
    assert engine.state.windows.frontier == EPOCH_T0 + 60 * 29
    published = engine.flush(WALL, clock + IDLE, REFERENCE)  # both quiet for the idle time
    live_minutes = _energy(published, "1m", final=True)
    assert EPOCH_T0 + DAY_S + 60 * 20 in live_minutes  # closed once nobody holds it


def test_a_producer_sending_history_holds_open_windows_until_it_goes_quiet() -> None:
    engine = _engine(IDLE)
    _apply(engine, _record(0, *(_reading("live-feed", n, DAY_S + 60 * n) for n in range(5))))
    engine.flush(WALL, 1.0, REFERENCE)  # the live feed alone: frontier at its minute 4 of the next day
    # A partner starts uploading yesterday while the live feed goes on.
    counts = _apply(engine, _record(1, *(_reading("partner", 100 + n, 60 * n) for n in range(3))))
    assert counts == Counter(late=3)  # its windows had closed: counted, through the corrections
    _apply(engine, _record(2, *(_reading("live-feed", 10 + n, DAY_S + 60 * (10 + n)) for n in range(5))))
    held = engine.flush(WALL, 3.0, REFERENCE)
    assert not {s for s in _energy(held, "1m", final=True) if s >= EPOCH_T0 + DAY_S}  # the partner holds
    assert engine.state.windows.frontier == EPOCH_T0 + DAY_S + 240  # never back, not on either
    # The partner quiet for the idle time: it holds nothing, the live feed's minutes close up
    # to its progress (minute 14) less the grace (5 minutes).
    released = engine.flush(WALL, 3.0 + IDLE, REFERENCE)
    assert engine.state.windows.frontier == EPOCH_T0 + DAY_S + 840
    assert set(_energy(released, "1m", final=True)) == {EPOCH_T0 + DAY_S + 60 * n for n in range(5)}
    partner_hour = _energy(held, "1h", final=True)[EPOCH_T0]
    assert round(partner_hour["value"], 9) == round(sum(_kwh(100 + n) for n in range(3)), 9)


def test_the_progress_of_each_producer_is_restored_and_holds_again_after_a_restart() -> None:
    engine = _engine(IDLE, checkpoint_seconds=0)
    _apply(engine, _record(0, _reading("live-feed", 0, HALF_DAY), _reading("partner", 1, 0)))
    checkpoint = engine.flush(WALL, 1.0, REFERENCE).checkpoint
    assert checkpoint is not None
    engine.checkpoint_delivered()
    restored = _engine(IDLE, checkpoint[1], checkpoint_seconds=0)
    assert restored.state.windows.producers == {
        "live-feed intervals": EPOCH_T0 + HALF_DAY,
        "partner intervals": EPOCH_T0,
    }
    assert restored.state.windows.frontier == engine.state.windows.frontier == EPOCH_T0
    _apply(restored, _record(1, _reading("live-feed", 2, HALF_DAY + 600)))
    restored.flush(WALL, 100.0, REFERENCE)  # its first flush: the partner counts as just heard
    assert restored.state.windows.frontier == EPOCH_T0
    restored.flush(WALL, 100.0 + IDLE, REFERENCE)
    assert restored.state.windows.frontier == EPOCH_T0 + HALF_DAY + 600
    assert decode(checkpoint[1], 2).windows.producers == {
        "live-feed intervals": EPOCH_T0 + HALF_DAY,
        "partner intervals": EPOCH_T0,
    }


def test_a_producer_more_than_a_day_behind_holds_nothing_further_back() -> None:
    """A history upload, still sending: the live windows close a day behind the live feed at
    most, and the upload's readings correct closed windows."""
    engine = _engine(IDLE)
    _apply(engine, _record(0, _reading("live-feed", 0, 3 * DAY_S), _reading("history", 1, 0)))
    engine.flush(WALL, 1.0, REFERENCE)
    assert engine.state.windows.frontier == EPOCH_T0 + 2 * DAY_S
    assert _apply(engine, _record(1, _reading("history", 2, 60))) == Counter(late=1)


def test_without_quiet_closing_windows_close_on_the_partition_watermark() -> None:
    engine = _engine(0)
    _apply(engine, _record(0, _reading("live-feed", 0, DAY_S), _reading("partner", 1, 0)))
    engine.flush(WALL, 1.0, REFERENCE)
    assert engine.state.windows.frontier == engine.state.windows.watermark == EPOCH_T0 + DAY_S


def test_a_producers_interval_readings_are_not_made_late_by_its_index_readings() -> None:
    """A distributor sends its index meters' readings (placed at their event time) and its
    interval meters' 15-minute readings (placed at their interval's start) together: with one
    progress per producer, every interval reading came after its minute had closed (3 600 to
    4 500 late readings at each soak's start)."""
    engine = _engine(IDLE)  # 5 minutes of grace
    outcomes: Counter[str] = Counter()
    for k in range(30):
        now = T0 + timedelta(minutes=k)
        index = energy_reading(
            "enedis",
            f"i{k}",
            now,
            meter_id="elec-17300-0002",
            kind="index",
            quantity=10 * k,
            interval_start=None,
        )
        interval = energy_reading("enedis", f"q{k}", now)  # over the 15 minutes before ``now``
        outcomes += _apply(engine, _record(k, index, interval))
        engine.flush(WALL, float(k), REFERENCE)
    # The first index reading is the meter's baseline: it counts in nothing.
    assert outcomes == Counter(counted=59, index_baselines=1)
    assert engine.state.windows.producers == {
        "enedis": EPOCH_T0 + 29 * 60,
        "enedis intervals": EPOCH_T0 + 14 * 60,
    }


DAY_S = 86400
HALF_DAY = DAY_S // 2
