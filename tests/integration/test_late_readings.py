"""Late readings correct every window size, whatever their arrival order (issue 20).

A reading arriving after its minute closed used to count in its day and year-to-date only:
InfluxDB kept 15-minute and hourly windows short of a partner's next-day delivery or a
device's backlog, for good. Now every window size is corrected, so InfluxDB must end up with
the sums one computes from the readings alone.

The scenario (live quarter-hours of Aytré, alone in this module on its partition, then a
partner's next-day delivery, a device's 3-hour backlog and a week of history, all late) and
what InfluxDB must hold after it are in late_scenario.py. One worker runs throughout; it
counts the late readings as late, the others as counted, and validation accepted them all.
"""

from __future__ import annotations

import random
import uuid
from pathlib import Path

from config.kafka_access import KafkaAccess
from config.settings import Settings
from schemas.local_calendar import ZoneCalendar
from sinks.influx_target import InfluxTarget
from tests.integration.late_scenario import influx_differences, late_scenario, publish, publish_live
from zerocarbon.demo import validation_totals, worker_counters


async def test_late_readings_correct_every_window_size_in_influxdb(
    settings: Settings,
    kafka_admin: KafkaAccess,
    influx_target: InfluxTarget,
    fresh_partition: None,
    worker: Path,
    sink: Path,
) -> None:
    run = uuid.uuid4().hex[:8]
    calendar = ZoneCalendar(settings.time_zone)
    scenario = late_scenario(run, settings.indicator_grace_seconds, random.Random(run), calendar)
    arrivals, late = scenario.arrivals, scenario.late

    before = worker_counters(settings)
    await publish_live(kafka_admin, settings, scenario)
    for delivery in (scenario.partner, scenario.backlog, scenario.history):
        await publish(kafka_admin, delivery)

    problems = await influx_differences(influx_target, scenario, timeout=120)
    assert not problems, f"{len(problems)} of {len(scenario.expected)} windows differ: {problems[:8]}"

    after = worker_counters(settings)
    counted = {k: after["indicators"].get(k, 0) - before["indicators"].get(k, 0) for k in ("counted", "late")}
    assert counted == {"counted": len(arrivals) - len(late), "late": len(late)}, counted
    validated = {k: v - validation_totals(before)[k] for k, v in validation_totals(after).items()}
    assert validated == {
        "received": len(arrivals),
        "accepted": len(arrivals),
        "duplicates": 0,
        "dead_lettered": 0,
    }
