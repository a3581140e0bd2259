"""Exact indicators through random crashes, and through two workers sharing the partitions.

Crash test: 100 000 readings (two meters of two communes, on partitions 0 and 2, 50 000 each, one every 30 s,
Wh = 100 + 10 x (k mod 37) and 120 + 7 x (k mod 53)) are produced in ten chunks; after three
chunks drawn at random the worker is SIGKILLed after a random delay, wherever it is, and
restarted. Every hourly total must equal the arithmetic (GoldenMeter.hourly_kwh), and every
daily total the sum of the readings of its local day (ZC_TIME_ZONE), computed from the zone
database: the readings cross a clock change, whose day has 23 or 25 hourly windows.

Two-worker test: four golden meters, one per commune partition, plus a second meter of the
same series (commune, sector, carrier) as one of them, through two workers of the same
group; each worker must have counted readings, and every hourly total must equal the
arithmetic, i.e. what one worker gives; the shared series is the sum of its two meters.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from config.kafka_access import KafkaAccess
from config.settings import Settings
from schemas.local_calendar import ZoneCalendar
from tests.integration.golden_meters import (
    METERS,
    TWIN,
    IntervalSeries,
    differences,
    forget_indicator_state,
    hourly_finals,
    indicator_offsets,
    merged_records,
    produce_raw,
)
from tests.integration.worker_runs import start_worker
from zerocarbon.demo import worker_counters
from zerocarbon.processes import stop_child

READINGS_PER_METER = 50_000
CHUNKS = 10


def recent_midnight(days_ago: int) -> datetime:
    return datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=days_ago)


def clock_change_day(calendar: ZoneCalendar, before: datetime) -> tuple[int, int]:
    """The bounds of the latest local day before ``before`` that is not 24 hours long."""
    start, _ = calendar.day(int(before.timestamp()))
    for _ in range(400):
        start, end = calendar.day(start - 1)
        if end - start != 86400:
            return start, end
    raise AssertionError(f"{calendar.name} changed its clocks in no day of the year before {before}")


async def test_hourly_totals_are_exact_after_three_random_sigkills(
    settings: Settings, kafka_admin: KafkaAccess, tmp_path: Path
) -> None:
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    run = uuid.uuid4().hex[:8]
    since, offsets = datetime.now(UTC), await indicator_offsets(kafka_admin, settings)
    # Three local days before the latest clock change that leaves the 17.4 days of readings in the past.
    calendar = ZoneCalendar(settings.time_zone)
    change = clock_change_day(calendar, recent_midnight(18))
    start = datetime.fromtimestamp(calendar.day(change[0] - 3 * 86400 + 1)[0], UTC)
    series = [
        IntervalSeries(METERS[0], run, start, timedelta(seconds=30), lambda k: 100 + 10 * (k % 37)),
        IntervalSeries(METERS[2], run, start, timedelta(seconds=30), lambda k: 120 + 7 * (k % 53)),
    ]
    kills = sorted(rng.sample(range(CHUNKS - 1), 3))
    delays = [round(rng.uniform(0.0, 3.0), 2) for _ in kills]
    print(f"seed {seed}: SIGKILL after chunks {kills}, {delays} s after each")  # to replay a failure
    await forget_indicator_state(kafka_admin, settings, {s.meter.partition(settings) for s in series})
    log = tmp_path / "worker.log"
    worker = start_worker(log)
    per_chunk = READINGS_PER_METER // CHUNKS
    try:
        for chunk in range(CHUNKS):
            ks = range(chunk * per_chunk, (chunk + 1) * per_chunk)
            await asyncio.gather(*(produce_raw(kafka_admin, s.meter, s.records(ks)) for s in series))
            if chunk in kills:
                await asyncio.sleep(delays[kills.index(chunk)])
                worker.kill()  # SIGKILL: no commit, no flush, no checkpoint
                worker.wait()
                worker = start_worker(log)
        closers = (produce_raw(kafka_admin, s.meter, s.closer(READINGS_PER_METER)) for s in series)
        await asyncio.gather(*closers)
        expected = {s.meter: s.hourly_kwh(READINGS_PER_METER) for s in series}
        daily = {
            s.meter: s.daily_kwh(READINGS_PER_METER, calendar, settings.indicator_grace_seconds)
            for s in series
        }
        finals = await hourly_finals(kafka_admin, settings, expected, since, timeout=300, offsets=offsets)
        daily_got = await hourly_finals(kafka_admin, settings, daily, since, 60, offsets, window="1d")
    finally:
        stop_child(worker)
    for meter in expected:
        assert len(expected[meter]) > 400
        assert finals[meter] == expected[meter], f"seed {seed}: {differences(finals, expected)}"
        # The clock change's day: 23 or 25 hourly windows, and its daily total is theirs.
        hours = [h for h in expected[meter] if change[0] <= h < change[1]]
        assert len(hours) == (change[1] - change[0]) // 3600 in (23, 25)
        assert change[0] in daily[meter] and len(daily[meter]) >= 16
        assert daily[meter][change[0]] == round(sum(expected[meter][h] for h in hours), 6)
        assert daily_got[meter] == daily[meter], f"seed {seed}: {differences(daily_got, daily)}"


async def test_two_workers_give_the_figures_of_one(
    settings: Settings, kafka_admin: KafkaAccess, tmp_path: Path
) -> None:
    run = uuid.uuid4().hex[:8]
    since, offsets = datetime.now(UTC), await indicator_offsets(kafka_admin, settings)
    start = recent_midnight(14)  # 250 hours of readings, all in the past
    readings = 3000
    series = [
        IntervalSeries(meter, run, start, timedelta(minutes=5), lambda k, p=p: 100 + 13 * ((k + p) % 29))
        for p, meter in enumerate(METERS)
    ]
    twin = IntervalSeries(TWIN, run, start, timedelta(minutes=5), lambda k: 50 + (k % 11))
    assert len({s.meter.partition(settings) for s in series}) == len(series)  # one per partition
    await forget_indicator_state(kafka_admin, settings, {s.meter.partition(settings) for s in series})
    second_port = settings.worker_web_port + 1
    first = start_worker(tmp_path / "first.log")
    second = None
    try:
        second = start_worker(tmp_path / "second.log", {"ZC_WORKER_WEB_PORT": str(second_port)})
        await asyncio.sleep(5)  # the group rebalances onto both workers
        shared = series[2]  # TWIN's series: both meters' readings, merged in event-time order
        records = {s.meter: s.records(range(readings)) for s in series if s is not shared}
        records[shared.meter] = merged_records([shared, twin], range(readings))
        await asyncio.gather(*(produce_raw(kafka_admin, meter, values) for meter, values in records.items()))
        await asyncio.gather(*(produce_raw(kafka_admin, s.meter, s.closer(readings)) for s in series))
        expected = {s.meter: s.hourly_kwh(readings) for s in series}
        twin_hours = twin.hourly_kwh(readings)
        expected[shared.meter] = {h: round(v + twin_hours[h], 6) for h, v in expected[shared.meter].items()}
        finals = await hourly_finals(kafka_admin, settings, expected, since, timeout=180, offsets=offsets)
        counted = []
        for port in (settings.worker_web_port, second_port):
            with contextlib.suppress(OSError):
                counted.append(
                    worker_counters(Settings(worker_web_port=port))["indicators"].get("counted", 0)
                )
    finally:
        stop_child(first)
        if second is not None:
            stop_child(second)
    assert len(counted) == 2 and all(c > 0 for c in counted), f"both workers must share the work: {counted}"
    assert finals == expected, differences(finals, expected)
