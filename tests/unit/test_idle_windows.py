"""Quiet partitions close their windows (issue 19): a partition that has received no record
for ``idle_close_seconds`` on the monotonic clock lets its watermark run on as time passes,
never nearer the wall clock than the grace (streams/indicators/engine.py, invariant 6;
docs/indicators.md, "Quiet partitions")."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from config.settings import Settings
from schemas.catalogue import valid_topic
from streams.indicators.engine import IndicatorPartition, Publication, ValidRecord
from streams.indicators.window_state_codec import decode
from streams.validation.engine import VALID_ARRAY
from tests.contract.samples import REFERENCE
from tests.energy_readings import energy_reading
from zerocarbon.component_configs import worker_config

TOPIC = valid_topic("energy")
T0 = datetime(2026, 11, 30, 10, tzinfo=UTC)  # the readings' event times start here
WALL = datetime(2026, 12, 3, tzinfo=UTC)  # the wall clock: days later, unless a test says
EPOCH_T0 = int(T0.timestamp())
DAY = 86400


def _engine(
    idle: float, checkpoint: bytes | None = None, grace: int = 300, checkpoint_seconds: float = 5.0
) -> IndicatorPartition[int]:
    return IndicatorPartition(
        TOPIC, 2, checkpoint, grace_seconds=grace, checkpoint_seconds=checkpoint_seconds,
        idle_close_seconds=idle,
    )  # fmt: skip


def _reading(n: int, second: int) -> dict[str, Any]:
    """A one-minute interval of (100 + n) Wh starting ``second`` s after T0: its windows are
    those holding that instant. Ids differ by ``n``."""
    start = T0 + timedelta(seconds=second)
    return energy_reading(
        "partner-1", f"e{n}", start + timedelta(minutes=1), quantity=100 + n, interval_start=start.isoformat()
    )


def _kwh(n: int) -> float:
    return (100 + n) / 1000


def _record(offset: int, *readings: dict[str, Any]) -> ValidRecord:
    adapter = VALID_ARRAY["energy"]
    value = adapter.dump_json(adapter.validate_json(json.dumps(readings)), by_alias=True)
    return ValidRecord(TOPIC, 2, offset, b"17300", value)


def _apply(engine: IndicatorPartition[int], record: ValidRecord, now: datetime = WALL) -> Counter[str]:
    return engine.apply(record, REFERENCE, now, record.offset).counters


def _energy(publication: Publication[int], window: str, final: bool | None = None) -> dict[int, Any]:
    """The ``energy_consumed_kwh`` updates of ``window`` published, by window start (epoch s)."""
    found = {}
    for _, value in publication.updates:
        u = json.loads(value)
        if u["indicator"] == "energy_consumed_kwh" and u["window"] == window and final in (None, u["final"]):
            found[int(datetime.fromisoformat(u["window_start"]).timestamp())] = u
    return found


def _minute_sums(readings: list[tuple[int, int]]) -> dict[int, float]:
    """Expected 1-minute totals of (n, second) readings, by window start."""
    sums: dict[int, int] = {}
    for n, second in readings:
        start = (EPOCH_T0 + second) // 60 * 60
        sums[start] = sums.get(start, 0) + 100 + n
    return {start: wh / 1000 for start, wh in sums.items()}


@settings(max_examples=150, deadline=None)
@given(
    seconds=st.lists(st.integers(0, 3 * 3600 - 1), min_size=1, max_size=12),
    grace=st.integers(0, 900),
    idle=st.integers(1, 900),
    more_quiet=st.integers(0, 2 * DAY),
    wall_after_t0=st.integers(0, 4 * DAY),
)
def test_a_quiet_partition_closes_its_windows_after_the_idle_time_and_not_before(
    seconds: list[int], grace: int, idle: int, more_quiet: int, wall_after_t0: int
) -> None:
    wall = T0 + timedelta(seconds=wall_after_t0)
    readings = list(enumerate(seconds))
    quiet, never = _engine(idle, grace=grace), _engine(0, grace=grace)
    for engine in (quiet, never):
        _apply(engine, _record(0, *(_reading(n, s) for n, s in readings)), wall)
    first = quiet.flush(wall, 0.0, REFERENCE)
    assert first.updates == never.flush(wall, 0.0, REFERENCE).updates
    watermark = quiet.state.windows.watermark  # the readings' own
    activity_watermark = quiet.activity.watermark

    # Before the idle time: exactly what a partition that never idles does.
    before = quiet.flush(wall, idle - 0.5, REFERENCE)
    assert before.updates == never.flush(wall, idle - 0.5, REFERENCE).updates
    assert quiet.state.windows.watermark == watermark and before.checkpoint is None

    # After it: every window that closes by the point the watermark may reach closes, now.
    elapsed = idle + more_quiet
    after = quiet.flush(wall, elapsed, REFERENCE)
    limit = min(watermark + elapsed, int(wall.timestamp()) - grace)
    closes = {start: start + 60 + grace for start in _minute_sums(readings)}
    expected = {start for start, close in closes.items() if watermark < close <= limit}
    finals = _energy(after, "1m", final=True)
    assert finals.keys() == expected
    sums = _minute_sums(readings)
    assert all(round(finals[start]["value"], 9) == round(sums[start], 9) for start in expected)
    # Never backwards, never beyond the wall clock minus the grace (or the readings' own).
    assert watermark <= quiet.state.windows.watermark <= max(watermark, int(wall.timestamp()) - grace)
    still_open = {start for (_, _, size, start) in quiet.state.windows.open if size == 60}
    assert still_open == {start for start, close in closes.items() if close > max(limit, watermark)}
    # A move is checkpointed (no record is pending) once a checkpoint is due; no move, none.
    moved = (quiet.state.windows.watermark, quiet.activity.watermark) != (watermark, activity_watermark)
    assert after.acks == []
    assert (after.checkpoint is not None) == (moved and elapsed >= 5.0)


@settings(max_examples=150, deadline=None)
@given(
    base=st.sampled_from([0, -300 * DAY]),  # live readings, or a backfill of ten months ago
    # The gap to the next record (s); how far event time moves on meanwhile, slower or faster
    # than the clock (a replay); how late its reading is on that.
    steps=st.lists(
        st.tuples(st.integers(0, 29), st.integers(0, 60), st.integers(-150, 0)), min_size=1, max_size=40
    ),
)
# Records every 29 s for five minutes whose event time stands still: busy, so nothing closes.
@example(base=0, steps=[(0, 0, 0)] + [(29, 0, 0)] * 10)
def test_a_busy_partition_never_idles_even_when_it_replays_old_readings(
    base: int, steps: list[tuple[int, int, int]]
) -> None:
    """Records at most 29 s apart, with a flush each second, for an idle time of 30 s: the
    partition flushes exactly as one that never idles, whatever its event times (last year's
    readings replayed included: quietness is on the monotonic clock, not on event time)."""
    busy, never = _engine(30, grace=60), _engine(0, grace=60)
    never.state.windows.epoch = busy.state.windows.epoch  # drawn at random: the checkpoints compare whole
    clock = position = 0
    for offset, (gap, advance, delay) in enumerate(steps):
        for _ in range(gap):
            clock += 1
            a, b = busy.flush(WALL, clock, REFERENCE), never.flush(WALL, clock, REFERENCE)
            assert (a.updates, a.checkpoint, a.acks) == (b.updates, b.checkpoint, b.acks)
        position += advance
        record = _record(offset, _reading(offset, base + position + delay))
        assert _apply(busy, record) == _apply(never, record)
    clock += 1
    a, b = busy.flush(WALL, clock, REFERENCE), never.flush(WALL, clock, REFERENCE)
    assert (a.updates, a.checkpoint, a.acks) == (b.updates, b.checkpoint, b.acks)
    assert busy.state.windows.watermark == never.state.windows.watermark


def _closed_by_quiet(idle: float = 60) -> IndicatorPartition[int]:
    """Readings in the minutes 10:00 to 10:04, then quiet until all five 1-minute windows
    closed: the watermark runs on from 10:04, and the minute 10:0n closes at 10:0(n+1) plus
    the 5 minutes of grace, the last 360 s after 10:04."""
    engine = _engine(idle)
    _apply(engine, _record(0, *(_reading(n, 60 * n) for n in range(5))))
    engine.flush(WALL, 0.0, REFERENCE)
    assert not engine.flush(WALL, idle - 1, REFERENCE).updates
    early = engine.flush(WALL, 359.0, REFERENCE)  # the watermark at 10:09:59
    assert _energy(early, "1m", final=True).keys() == {EPOCH_T0 + 60 * n for n in range(4)}
    closed = engine.flush(WALL, 360.0, REFERENCE)
    assert _energy(closed, "1m", final=True).keys() == {EPOCH_T0 + 240}
    return engine


def test_a_reading_after_an_idle_close_corrects_its_closed_minute_and_counts_once() -> None:
    engine = _closed_by_quiet()
    late = _reading(9, 2 * 60 + 30)  # in 10:02, whose minute closed on quiet
    assert _apply(engine, _record(1, late)) == Counter(late=1)
    assert _apply(engine, _record(2, late)) == Counter(duplicate=1)  # resent: not again
    published = engine.flush(WALL, 361.0, REFERENCE)
    corrected = _energy(published, "1m", final=True)  # the closed minute, corrected once
    assert corrected.keys() == {EPOCH_T0 + 120} and corrected[EPOCH_T0 + 120]["revision"] == 1
    assert round(corrected[EPOCH_T0 + 120]["value"], 9) == round(_kwh(2) + _kwh(9), 9)
    everything = round(sum(_kwh(n) for n in (*range(5), 9)), 9)
    assert round(_energy(published, "15m", final=False)[EPOCH_T0]["value"], 9) == everything  # still open
    day_start = EPOCH_T0 - EPOCH_T0 % DAY
    assert round(_energy(published, "1d", final=False)[day_start]["value"], 9) == everything
    year_start = int(datetime(2026, 1, 1, tzinfo=UTC).timestamp())
    assert round(_energy(published, "ytd")[year_start]["value"], 9) == everything
    assert (engine.state.windows.counted, engine.state.windows.late) == (5, 1)


def test_a_day_closed_on_quiet_is_revised_by_a_late_reading() -> None:
    engine = _engine(60)
    evening = 13 * 3600 + 50 * 60  # 23:50
    _apply(engine, _record(0, *(_reading(n, evening + 60 * n) for n in range(3))))
    engine.flush(WALL, 0.0, REFERENCE)
    day_start = EPOCH_T0 - EPOCH_T0 % DAY
    closed = engine.flush(WALL, 2 * 3600.0, REFERENCE)  # 23:52 + 2 h: past midnight + grace
    assert _energy(closed, "1d", final=True)[day_start]["revision"] == 0
    assert _apply(engine, _record(1, _reading(7, evening + 90))) == Counter(late=1)
    revised = _energy(engine.flush(WALL, 2 * 3600.0 + 1, REFERENCE), "1d", final=True)[day_start]
    assert revised["revision"] == 1
    assert round(revised["value"], 9) == round(sum(_kwh(n) for n in (0, 1, 2, 7)), 9)


def test_a_restart_keeps_what_quietness_closed_and_goes_on_closing() -> None:
    engine = _engine(60)
    _apply(engine, _record(0, *(_reading(n, 60 * n) for n in range(5))))
    assert engine.flush(WALL, 0.0, REFERENCE).checkpoint is not None  # the records'
    moved = engine.flush(WALL, 360.0, REFERENCE)
    assert moved.checkpoint is not None and moved.acks == []  # the move's, with no record pending
    assert decode(moved.checkpoint[1], 2).windows.watermark == engine.state.windows.watermark

    restored = _engine(60, moved.checkpoint[1])
    assert not [key for key in restored.state.windows.open if key[2] == 60]  # closed for good
    late = _record(1, _reading(9, 2 * 60 + 30))
    assert _apply(restored, late) == _apply(engine, late) == Counter(late=1)
    assert restored.flush(WALL, 361.0, REFERENCE).updates == engine.flush(WALL, 361.0, REFERENCE).updates
    # Quiet again: the restored partition closes the rest as the uninterrupted one does.
    for clock in (400.0, 1200.0, 4000.0):
        published = restored.flush(WALL, clock, REFERENCE)
        assert published.updates == engine.flush(WALL, clock, REFERENCE).updates
    everything = round(sum(_kwh(n) for n in (*range(5), 9)), 9)
    assert round(_energy(published, "1h", final=True)[EPOCH_T0]["value"], 9) == everything  # at 11:05
    assert restored.state.windows.watermark == engine.state.windows.watermark


def test_a_crash_before_the_move_is_checkpointed_closes_the_same_windows_with_the_same_values() -> None:
    engine = _engine(60)
    _apply(engine, _record(0, *(_reading(n, 60 * n) for n in range(5))))
    before = engine.flush(WALL, 0.0, REFERENCE).checkpoint
    assert before is not None
    published = engine.flush(WALL, 360.0, REFERENCE).updates  # then the crash: no checkpoint
    restored = _engine(60, before[1])
    restored.flush(WALL, 1000.0, REFERENCE)  # the new process's clock: quiet from here
    assert not restored.flush(WALL, 1059.0, REFERENCE).updates
    assert restored.flush(WALL, 1360.0, REFERENCE).updates == published  # idempotent


def test_a_partition_with_nothing_open_neither_moves_nor_checkpoints() -> None:
    empty = _engine(1)
    for clock in (0.0, 5.0, 3600.0, 5 * DAY):
        published = empty.flush(WALL, clock, REFERENCE)
        assert (published.updates, published.checkpoint) == ([], None)
    assert empty.state.windows.watermark == 0
    engine = _engine(60)
    _apply(engine, _record(0, _reading(0, 0)))
    for clock in (0.0, 5 * DAY):
        engine.flush(WALL, clock, REFERENCE)
    assert not engine.state.windows.open  # the day too: WALL is past its end plus the grace
    watermark = engine.state.windows.watermark
    assert all(engine.flush(WALL, clock, REFERENCE).checkpoint is None for clock in (5 * DAY + 60, 6 * DAY))
    assert engine.state.windows.watermark == watermark


def test_the_wall_clock_minus_the_grace_bounds_the_move() -> None:
    """A partition whose last reading is recent: however long it stays quiet, its windows
    close only once the wall clock is the grace past their close."""
    engine = _engine(60)
    _apply(engine, _record(0, _reading(0, 0)))  # 10:00, window 10:00-10:01, closes at 10:06
    engine.flush(T0, 0.0, REFERENCE)
    at = lambda minutes: T0 + timedelta(minutes=minutes)  # noqa: E731
    assert not _energy(engine.flush(at(10), 3600.0, REFERENCE), "1m")  # 10:10 - 5 min < 10:06
    assert _energy(engine.flush(at(11), 3601.0, REFERENCE), "1m", final=True).keys() == {EPOCH_T0}


def test_idleness_is_off_at_zero() -> None:
    engine = _engine(0)
    _apply(engine, _record(0, _reading(0, 0)))
    engine.flush(WALL, 0.0, REFERENCE)
    assert not _energy(engine.flush(WALL, 30 * DAY, REFERENCE), "1m")


def test_the_last_flush_on_the_way_out_checkpoints_without_moving_the_clock() -> None:
    engine = _engine(60)
    _apply(engine, _record(0, _reading(0, 0)))
    engine.flush(WALL, 0.0, REFERENCE)
    _apply(engine, _record(1, _reading(1, 60)))
    last = engine.flush(WALL, 1.0, REFERENCE, checkpoint_now=True)
    assert last.acks == [1] and last.checkpoint is not None


def test_the_idle_time_is_a_setting_carried_to_the_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ZC_INDICATOR_IDLE_CLOSE_SECONDS", raising=False)
    assert Settings().indicator_idle_close_seconds == 60
    assert worker_config(Settings()).idle_close_seconds == 60
    monkeypatch.setenv("ZC_INDICATOR_IDLE_CLOSE_SECONDS", "3")
    assert worker_config(Settings()).idle_close_seconds == 3
    monkeypatch.setenv("ZC_INDICATOR_IDLE_CLOSE_SECONDS", "-1")
    with pytest.raises(ValidationError, match="indicator_idle_close_seconds"):
        Settings()
