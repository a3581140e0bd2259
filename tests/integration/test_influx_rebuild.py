"""InfluxDB rebuilt from zc.indicators, as docs/operations.md tells an operator to (issue 23).

The procedure: stop the sink, name a new sink group (ZC_SINK_GROUP), grant it (`zerocarbon
stack up` on the local stack), start the sink: a new group reads the compacted topic from its
beginning, and every window's latest update is written again. Here InfluxDB loses a golden
meter's day (deleted, as a lost volume would lose it), and the procedure brings back the
figures it held, final.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from influxdb_client import InfluxDBClient

from config.kafka_access import KafkaAccess
from config.settings import Settings
from schemas.catalogue import INDICATOR_TOPIC
from sinks.influx_readback import StoredIndicator, read_indicator
from sinks.influx_target import InfluxTarget
from streams.kafka_admin import start_group_at_end, topic_ends
from tests.integration.golden_meters import RESIDENTIAL, IntervalSeries, produce_raw
from tests.waiting import until
from zerocarbon.processes import start_service, stop_child

SERIES = RESIDENTIAL.series
READINGS = 8  # quarter hours: two hours of the golden meter, then a closer
REBUILD_RECORDS_PER_SECOND = 10_000


def _stack_up(env: dict[str, str]) -> None:
    """`zerocarbon stack up`, which grants the sink principal the group ZC_SINK_GROUP names."""
    done = subprocess.run(
        [sys.executable, "-m", "zerocarbon.cli", "stack", "up"],
        env={**os.environ, **env}, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]


@pytest.fixture
def default_grants_back() -> Iterator[None]:
    """The sink's default group granted again after the test (its grant replaced the default's)."""
    yield
    _stack_up({})


def _hours(target: InfluxTarget, start: datetime) -> list[tuple[datetime, float, bool]]:
    """The golden series' hours in InfluxDB from ``start``, as long as the readings last (the
    closer's hour comes after). Only those: a fault scenario's simulated territory may have
    written other hours of the day for the same series (a CI run found its 01:00 and 02:00)."""
    stored: list[StoredIndicator] = read_indicator(
        target, "energy_consumed_kwh", "1h", SERIES, start, start + READINGS * timedelta(minutes=15)
    )
    return [(s.time, round(s.value, 6), s.final) for s in stored]


def _lose_the_day(target: InfluxTarget, day: datetime) -> None:
    """Delete the golden series' points of ``day``, as a lost InfluxDB volume loses them."""
    predicate = (
        '_measurement="energy_consumed_kwh" AND commune="17028" AND sector="residential" '
        'AND carrier="electricity"'
    )
    with InfluxDBClient(url=target.url, token=target.token, org=target.org) as client:
        client.delete_api().delete(
            day, day + timedelta(days=1), predicate, bucket=target.bucket, org=target.org
        )


async def test_a_lost_day_comes_back_from_the_indicator_topic(
    settings: Settings,
    kafka_admin: KafkaAccess,
    influx_target: InfluxTarget,
    influx_write_target: InfluxTarget,
    fresh_partition: None,
    worker: Path,
    tmp_path: Path,
    default_grants_back: None,
) -> None:
    day = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=3)
    start = day + timedelta(hours=3)
    series = IntervalSeries(RESIDENTIAL, f"rebuild-{uuid.uuid4().hex[:8]}", start, timedelta(minutes=15),
                            lambda k: 100 * (k + 1))  # fmt: skip
    expected = [
        (datetime.fromtimestamp(hour, UTC), kwh, True)
        for hour, kwh in sorted(series.hourly_kwh(READINGS).items())
    ]
    # The default group at the end of the topic: what earlier modules published is not this test's.
    await start_group_at_end(kafka_admin, settings.sink_group, [INDICATOR_TOPIC])
    sink = start_service(["sink"], tmp_path / "sink.log")
    try:
        await produce_raw(kafka_admin, RESIDENTIAL, series.records(range(READINGS)) + series.closer(READINGS))
        await until(
            "the sink writing the golden hours, final", lambda: _hours(influx_target, start) == expected, 90
        )
    finally:
        stop_child(sink)

    _lose_the_day(influx_write_target, day)
    assert _hours(influx_target, start) == []

    group = {"ZC_SINK_GROUP": f"zc-rebuild-{uuid.uuid4().hex[:8]}"}
    _stack_up(group)
    # A rebuild reads the whole topic: by this module a suite's run has published millions of
    # updates (5.9 million after a suite on a stack kept from earlier runs), so the wait scales
    # with it, at a pace well below the sink's.
    records = sum((await topic_ends(kafka_admin, [INDICATOR_TOPIC])).values())
    sink = start_service(["sink"], tmp_path / "rebuild.log", group)
    try:
        await until(
            "the rebuilt sink writing the day again",
            lambda: _hours(influx_target, start) == expected,
            max(180.0, records / REBUILD_RECORDS_PER_SECOND),
        )
    finally:
        stop_child(sink)
