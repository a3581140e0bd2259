"""The late-readings scenario of issue 20, shared by test_late_readings.py (one worker) and
test_late_readings_crashes.py (the same, with the worker SIGKILLed during the backfill).

One commune, Aytré (17028), whose partition's indicator state starts empty (the
``fresh_partition`` fixture). T0 is the current hour (UTC). Interval readings are placed
where their interval starts (docs/indicators.md); values are random whole Wh, drawn per run.

  (a) live, in event-time order, quarter-hours: industry meter golden-17028-0001 over the
      8 days before T0, residential golden-17028-0008 over the 30 hours before T0, industry
      golden-17028-0011 from T0-6h to T0-3h. All on time: watermark T0-15min; every window
      ending by T0-20min is closed and published final.
  (b) a partner's delivery: golden-17028-0011's hourly readings for [T0-30h, T0-6h), all late.
  (c) golden-17028-0011 back after 3 hours offline: its quarter-hours of [T0-3h, T0), late
      but for the last one.
  (d) the partner's week of history for golden-17028-0011, hourly, [T0-8d, T0-30h), late;
      those older than 48 hours are past the 1-minute windows' horizon.

What InfluxDB must hold after: every 15m, 1h and 1d window of both series equal to the sum
of its readings (relative 1e-9), and every 1m window of the last 47 hours; every closed
window a late reading fell in final with revision >= 1 (each held golden-17028-0001's
on-time reading, published final before the late ones were sent).
"""

from __future__ import annotations

import asyncio
import json
import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from fractions import Fraction
from typing import cast

from aiokafka import AIOKafkaProducer

from config.kafka_access import KafkaAccess
from config.settings import Settings
from schemas.catalogue import raw_topic
from schemas.local_calendar import Calendar
from sinks.influx_buckets import bucket_for_window
from sinks.influx_readback import stored_points
from sinks.influx_target import InfluxTarget
from tests.integration.golden_meters import (
    METERS,
    RESIDENTIAL,
    TWIN,
    GoldenMeter,
    indicator_finals,
    indicator_offsets,
    series_of,
)

INDUSTRY, RETURNING = METERS[2], TWIN  # golden-17028-0001 and -0011: one series
COMMUNE = INDUSTRY.commune
QUARTER, HOUR, DAY = 900, 3600, 86400
SIZES = {"1m": 60, "15m": QUARTER, "1h": HOUR, "1d": DAY}
MINUTES_CHECKED = 47 * HOUR
"""1m windows are corrected within 48 hours of the watermark: those of the last 47 are checked."""

Window = tuple[str, str, int]
"""A window of the commune's electricity: its size's name, the sector, its start (epoch s)."""


@dataclass(frozen=True)
class Reading:
    """An interval reading of ``meter``: ``wh`` Wh consumed over [start, start + seconds)."""

    event_id: str
    meter: GoldenMeter
    start: int
    seconds: int
    wh: int

    def event(self) -> dict[str, object]:
        at = lambda t: datetime.fromtimestamp(t, UTC).isoformat()  # noqa: E731
        return {
            "event_id": self.event_id, "producer_id": "golden-tests", "meter_id": self.meter.meter_id,
            "event_time": at(self.start + self.seconds), "interval_start": at(self.start),
            "commune": self.meter.commune, "sector": self.meter.sector, "carrier": "electricity",
            "quantity": self.wh, "unit": "Wh", "kind": "interval",
        }  # fmt: skip


@dataclass(frozen=True)
class Stored:
    value: float
    final: bool
    revision: int


def intervals(
    run: str, meter: GoldenMeter, first: int, end: int, seconds: int, wh: tuple[int, int], rng: random.Random
) -> list[Reading]:
    """``meter``'s readings of every interval of ``seconds`` from ``first`` to ``end``."""
    return [
        Reading(f"{run}-{meter.meter_id}-{seconds}-{t}", meter, t, seconds, rng.randint(*wh))
        for t in range(first, end, seconds)
    ]


async def publish(kafka: KafkaAccess, readings: list[Reading], per_record: int = 100) -> None:
    """To zc.raw.energy in this order, keyed by the commune, as JSON arrays (as partners send)."""
    producer = AIOKafkaProducer(**kafka.client_options(), acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for i in range(0, len(readings), per_record):
            value = json.dumps([r.event() for r in readings[i : i + per_record]]).encode()
            await producer.send(raw_topic("energy"), value, key=COMMUNE.encode())
        await producer.flush()
    finally:
        await producer.stop()


def late_ids(arrivals: list[Reading], grace: int) -> tuple[set[str], int]:
    """The late readings among ``arrivals`` (in arrival order) and the watermark after: a
    reading is late once the watermark (highest placed time of the readings on time) has
    passed the end of its minute plus the grace."""
    late, watermark = set(), 0
    for r in arrivals:
        if watermark >= r.start - r.start % 60 + 60 + grace:
            late.add(r.event_id)
        else:
            watermark = max(watermark, r.start)
    return late, watermark


def window_bounds(name: str, ts: int, calendar: Calendar) -> tuple[int, int]:
    """Start and end of the window ``name`` holding ``ts``: a day is the worker's local day."""
    size = SIZES[name]
    if size == DAY:
        return calendar.day(ts)
    return ts - ts % size, ts - ts % size + size


def windows_of(r: Reading, minutes_from: int, calendar: Calendar) -> list[Window]:
    starts = {name: window_bounds(name, r.start, calendar)[0] for name in SIZES}
    return [(name, r.meter.sector, s) for name, s in starts.items() if name != "1m" or s >= minutes_from]


@dataclass(frozen=True)
class LateScenario:
    """One run's readings, by delivery, and what InfluxDB must hold once all have arrived."""

    t0: int
    live: list[Reading]
    partner: list[Reading]
    backlog: list[Reading]
    history: list[Reading]
    late: set[str]
    """The event ids of the late readings."""
    expected: dict[Window, Fraction]
    """Each window's sum of its readings, in kWh."""
    corrected: set[Window]
    """The closed windows a late reading fell in: final, revision >= 1."""
    calendar: Calendar
    """Where the worker's days begin (ZC_TIME_ZONE)."""

    @property
    def deliveries(self) -> list[Reading]:
        """What arrives after the live readings, in arrival order: (b), (c) then (d)."""
        return self.partner + self.backlog + self.history

    @property
    def arrivals(self) -> list[Reading]:
        return self.live + self.deliveries

    @property
    def first_day(self) -> int:
        """The start of the earliest window holding a reading (the day of T0-8d)."""
        return self.calendar.day(self.t0 - 8 * DAY)[0]


def late_scenario(run: str, grace: int, rng: random.Random, calendar: Calendar) -> LateScenario:
    """The scenario at the current hour: ``run`` names its event ids, ``rng`` draws its values,
    ``calendar`` cuts its days."""
    t0 = int(datetime.now(UTC).timestamp()) // HOUR * HOUR
    live = sorted(
        intervals(run, INDUSTRY, t0 - 8 * DAY, t0, QUARTER, (2_000, 40_000), rng)
        + intervals(run, RESIDENTIAL, t0 - 30 * HOUR, t0, QUARTER, (50, 2_500), rng)
        + intervals(run, RETURNING, t0 - 6 * HOUR, t0 - 3 * HOUR, QUARTER, (1_000, 20_000), rng),
        key=lambda r: (r.start, r.meter.meter_id),
    )
    partner = intervals(run, RETURNING, t0 - 30 * HOUR, t0 - 6 * HOUR, HOUR, (5_000, 150_000), rng)
    backlog = intervals(run, RETURNING, t0 - 3 * HOUR, t0, QUARTER, (1_000, 20_000), rng)
    history = intervals(run, RETURNING, t0 - 8 * DAY, t0 - 30 * HOUR, HOUR, (5_000, 150_000), rng)
    arrivals = live + partner + backlog + history

    late, watermark = late_ids(arrivals, grace)
    assert (len(late), watermark) == (len(partner) + len(backlog) - 1 + len(history), t0 - QUARTER)
    minutes_from = watermark - MINUTES_CHECKED
    expected: dict[Window, Fraction] = {}
    for r in arrivals:
        for window in windows_of(r, minutes_from, calendar):
            expected[window] = expected.get(window, Fraction(0)) + Fraction(r.wh, 1000)
    corrected = {
        window
        for r in arrivals
        if r.event_id in late
        for window in windows_of(r, minutes_from, calendar)
        if window_bounds(window[0], window[2], calendar)[1] + grace <= watermark
    }
    return LateScenario(t0, live, partner, backlog, history, late, expected, corrected, calendar)


async def publish_live(kafka: KafkaAccess, settings: Settings, scenario: LateScenario) -> None:
    """Publish the live readings (a) and wait until the worker has published their windows final."""
    since, offsets = datetime.now(UTC), await indicator_offsets(kafka, settings)
    await publish(kafka, scenario.live)
    # Until the live readings' last flush has closed their windows (the industry minute at
    # T0-30min closes only at the watermark T0-15min): the late readings then correct
    # windows published final, rather than land in windows that have not closed yet.
    industry = series_of(INDUSTRY.series)
    closing = scenario.t0 - 2 * QUARTER
    finals = await indicator_finals(
        kafka, settings, "energy_consumed_kwh", "1m", {industry: [closing]}, since, 90, offsets
    )
    assert closing in finals[industry], "the live readings' windows never closed"


def stored_windows(target: InfluxTarget, first: int, end: int) -> dict[Window, Stored]:
    """The commune's electricity consumption windows in InfluxDB starting in [first, end)."""
    found: dict[Window, Stored] = {}
    begin, stop = (datetime.fromtimestamp(t, UTC) for t in (first, end))
    for name in SIZES:
        points = stored_points(target, bucket_for_window(name, target), name, begin, stop)
        for (measurement, tags, start), fields in points.items():
            dims = dict(tags)
            if (
                measurement == "energy_consumed_kwh"
                and (dims.get("commune"), dims.get("carrier")) == (COMMUNE, "electricity")
                and {"value", "final", "revision"} <= fields.keys()
            ):
                value, revision = cast(float, fields["value"]), cast(int, fields["revision"])
                found[(name, dims["sector"], start)] = Stored(value, fields["final"] is True, revision)
    return found


def differences(
    expected: dict[Window, Fraction], corrected: set[Window], stored: dict[Window, Stored]
) -> list[str]:
    """Windows missing, of another value, or (late and closed) not a final correction."""
    problems = []
    for window, kwh in sorted(expected.items()):
        got = stored.get(window)
        if got is None:
            problems.append(f"{window} missing")
        elif not math.isclose(got.value, float(kwh), rel_tol=1e-9):
            problems.append(f"{window} holds {got.value} kWh, expected {float(kwh)}")
        elif window in corrected and not (got.final and got.revision >= 1):
            problems.append(f"{window} final={got.final} revision={got.revision}: not a final correction")
    return problems


async def influx_differences(target: InfluxTarget, scenario: LateScenario, timeout: float) -> list[str]:
    """How InfluxDB differs from what the scenario must leave there, once it no longer does
    or after ``timeout`` seconds (the last differences then)."""

    def found() -> list[str]:
        stored = stored_windows(target, scenario.first_day, scenario.t0)
        return differences(scenario.expected, scenario.corrected, stored)

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    problems = found()
    while problems and loop.time() < deadline:
        await asyncio.sleep(1)
        problems = found()
    return problems
