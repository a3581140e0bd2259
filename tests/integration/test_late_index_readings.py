"""A meter back online sends its live index first, then its backlog: every window ends as if
the indexes had arrived in event-time order (issue 20; streams/indicators/meter_indexes.py).

Before, each index of the backlog came after the meter's live one and was dead-lettered
``index_out_of_order``: its consumption was counted in one lump at the live index's time, and
the quarter-hours and hours of the three offline hours stayed empty in InfluxDB.

The scenario, on Aytré's partition started afresh (``fresh_partition``), T0 the current hour:
  (a) live: industry meter golden-17028-0001's quarter-hours over [T0-8h, T0), which move the
      watermark to T0-15min; tertiary meter golden-17028-0002's indexes every quarter-hour
      from T0-8h to T0-3h, then, back online, its index at T0;
  (b) its backlog: its indexes of the quarter-hours in (T0-3h, T0), in event-time order,
      each after the T0 one: each splits the delta counted at T0.
What InfluxDB must hold: every 1m, 15m, 1h and 1d window of the tertiary series equal to the
deltas of its indexes in event-time order, each at the later index's time (exact to 1e-9);
the hour at T0-3h, closed with its on-time index, corrected (final, revision >= 1).
"""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from datetime import UTC, datetime
from fractions import Fraction
from itertools import pairwise

import pytest
from aiokafka import AIOKafkaProducer

from config.kafka_access import KafkaAccess
from config.settings import Settings
from schemas.catalogue import raw_topic
from schemas.local_calendar import Calendar, ZoneCalendar
from sinks.influx_target import InfluxTarget
from tests.integration.golden_meters import METERS, TERTIARY, indicator_finals, indicator_offsets, series_of
from tests.integration.late_scenario import (
    QUARTER,
    SIZES,
    Window,
    differences,
    intervals,
    publish,
    stored_windows,
    window_bounds,
)
from zerocarbon.demo import worker_counters

INDUSTRY = METERS[2]
PRODUCER = "golden-tests"
HOUR, DAY = 3600, 86400
Index = tuple[int, int]
"""An index of the tertiary meter: its event time (epoch s) and its value in Wh."""


def _event(run: str, at: int, wh: int) -> dict[str, object]:
    return {
        "event_id": f"{run}-index-{at}", "producer_id": "golden-tests", "meter_id": TERTIARY.meter_id,
        "event_time": datetime.fromtimestamp(at, UTC).isoformat(), "commune": TERTIARY.commune,
        "sector": TERTIARY.sector, "carrier": "electricity", "quantity": wh / 1000, "unit": "kWh",
        "kind": "index",
    }  # fmt: skip


async def _publish_indexes(kafka: KafkaAccess, run: str, indexes: list[Index]) -> None:
    producer = AIOKafkaProducer(**kafka.client_options(), acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for at, wh in indexes:  # one record each: the worst case for the arrival order
            await producer.send(raw_topic("energy"), json.dumps([_event(run, at, wh)]).encode(), key=b"17028")
        await producer.flush()
    finally:
        await producer.stop()


def _expected(indexes: list[Index], calendar: Calendar) -> dict[Window, Fraction]:
    """The tertiary series' windows: each delta in event-time order, at the later index's time."""
    expected: dict[Window, Fraction] = {}
    for (_, before), (at, after) in pairwise(sorted(indexes)):
        for name in SIZES:
            window = (name, TERTIARY.sector, window_bounds(name, at, calendar)[0])
            expected[window] = expected.get(window, Fraction(0)) + Fraction(after - before, 1000)
    return expected


@pytest.mark.usefixtures("fresh_partition", "worker", "sink")  # in this order: afresh, then started
async def test_a_meter_s_backlog_after_its_live_index_counts_where_each_index_belongs(
    settings: Settings, kafka_admin: KafkaAccess, influx_target: InfluxTarget
) -> None:
    run, rng = uuid.uuid4().hex[:8], random.Random()
    t0 = int(datetime.now(UTC).timestamp()) // HOUR * HOUR
    times = range(t0 - 8 * HOUR, t0 + 1, QUARTER)
    wh = 5_000_000 + rng.randrange(1_000_000)
    indexes: list[Index] = []
    for at in times:  # up to 10 kW: well within a tertiary meter's power
        indexes.append((at, wh))
        wh += rng.randrange(2_500)
    online = [i for i in indexes if i[0] <= t0 - 3 * HOUR]
    backlog = [i for i in indexes if t0 - 3 * HOUR < i[0] < t0]
    live = [*online, indexes[-1]]

    before = worker_counters(settings)
    since, offsets = datetime.now(UTC), await indicator_offsets(kafka_admin, settings)
    industry = intervals(run, INDUSTRY, t0 - 8 * HOUR, t0, QUARTER, (2_000, 40_000), rng)
    await publish(kafka_admin, industry)
    await _publish_indexes(kafka_admin, run, live)
    tertiary = series_of(TERTIARY.series)
    closed = t0 - 3 * HOUR  # the hour of the last index before the meter went offline
    finals = await indicator_finals(
        kafka_admin, settings, "energy_consumed_kwh", "1h", {tertiary: [closed]}, since, 90, offsets
    )
    assert closed in finals[tertiary], "the hour before the meter went offline never closed"

    await _publish_indexes(kafka_admin, run, backlog)
    expected = _expected(indexes, ZoneCalendar(settings.time_zone))
    corrected = {("1h", TERTIARY.sector, closed)}
    problems: list[str] = []
    for _ in range(120):
        stored = stored_windows(influx_target, t0 - 8 * HOUR - DAY, t0 + DAY)
        problems = differences(expected, corrected, stored)
        if not problems:
            break
        await asyncio.sleep(1)
    assert not problems, f"{len(problems)} of {len(expected)} windows differ: {problems[:8]}"

    after = worker_counters(settings)
    moved = {
        k: after["indicators"].get(k, 0) - before["indicators"].get(k, 0)
        for k in ("index_out_of_order", "index_recounts", "index_baselines")
    }
    # Each index of the backlog takes back the delta counted at T0 and counts it again from itself.
    assert moved == {"index_out_of_order": 0, "index_recounts": 2 * len(backlog), "index_baselines": 1}, moved
    # The golden meters' producer only: a record another test left on a raw topic (a principal's
    # test payload, dead-lettered when a worker reads it) is not this scenario's.
    validated = {
        outcome: after.get(outcome, {}).get(PRODUCER, 0) - before.get(outcome, {}).get(PRODUCER, 0)
        for outcome in ("accepted", "duplicates", "dead_lettered")
    }
    sent = len(industry) + len(live) + len(backlog)
    assert validated == {"accepted": sent, "duplicates": 0, "dead_lettered": 0}, validated
