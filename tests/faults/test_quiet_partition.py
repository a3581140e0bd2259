"""A quiet partition closes its windows (issue 19): a commune's readings, then silence, and
its 1-minute windows' final values come out on zc.indicators with no later reading.

Before, a partition's watermark moved only with readings: the last windows of a commune
whose devices had stopped waited for its next reading, here never. Now a partition that
has received nothing for ``ZC_INDICATOR_IDLE_CLOSE_SECONDS`` lets its watermark run on as
time passes from its last reading (docs/indicators.md, "Quiet partitions"): the last minute
closes once the partition has been quiet for the idle time and for its end plus the grace
past the last reading's event time, about a minute here; the test waits minutes for it.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from config.kafka_access import KafkaAccess
from config.settings import Settings
from streams.indicators.checkpoints import start_afresh
from tests.integration.golden_meters import (
    METERS,
    IntervalSeries,
    indicator_finals,
    indicator_offsets,
    produce_raw,
    series_of,
)
from tests.integration.worker_runs import start_worker, wait_counted
from zerocarbon.processes import stop_child

IDLE_CLOSE_SECONDS = 3
GRACE_SECONDS = 5
READINGS = 10


async def test_a_quiet_partition_publishes_its_last_minutes_final_without_a_later_reading(
    settings: Settings, kafka_admin: KafkaAccess, tmp_path: Path
) -> None:
    run = uuid.uuid4().hex[:8]
    meter = METERS[0]  # alone in its commune's partition
    since, offsets = datetime.now(UTC), await indicator_offsets(kafka_admin, settings)
    # Minute-long intervals on a past day: placed where they start, one per 1-minute window.
    start = (datetime.now(UTC) - timedelta(days=12)).replace(second=0, microsecond=0)
    series = IntervalSeries(meter, run, start, timedelta(minutes=1), lambda k: 40 + 7 * k)
    # The partition starts afresh at its end, with a short grace: its watermark is this test's.
    await start_afresh(kafka_admin, "energy", GRACE_SECONDS, [meter.partition(settings)])
    worker = start_worker(
        tmp_path / "worker.log", {"ZC_INDICATOR_IDLE_CLOSE_SECONDS": str(IDLE_CLOSE_SECONDS)}
    )
    try:
        await produce_raw(kafka_admin, meter, series.records(range(READINGS)))
        await wait_counted(settings, READINGS)
        # Silence from here. The readings' own watermark (the last interval's start) closes
        # all but the last two minutes; only quietness can close those.
        expected = {
            int((series.end(k) - series.step).timestamp()): round(series.wh(k) / 1000, 6)
            for k in range(READINGS)
        }
        finals = await indicator_finals(
            kafka_admin,
            settings,
            "energy_consumed_kwh",
            "1m",
            {series_of(meter.series): expected},
            since,
            timeout=300,
            offsets=offsets,
        )
    finally:
        stop_child(worker)
    log = (tmp_path / "worker.log").read_text()
    assert finals[series_of(meter.series)] == expected, log[-3000:]
    assert "quiet for" in log, log[-3000:]  # the last minutes were closed by quietness
