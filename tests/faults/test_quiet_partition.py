"""A quiet partition closes its windows (issue 19): a commune's readings, then silence, and
its 1-minute windows' final values come out on zc.indicators with no later reading.

Before, a partition's watermark moved only with readings: the last windows of a commune
whose devices had stopped waited for its next reading, here never. Now a partition that
has received nothing for ``ZC_INDICATOR_IDLE_CLOSE_SECONDS`` lets its watermark run on as
time passes from its last reading (docs/indicators.md, "Quiet partitions"): the last minute
closes once the partition has been quiet for the idle time and for its end plus the grace
past the last reading's event time, about a minute here; the test waits minutes for it.
The same holds after a restart, for a partition that receives nothing at all: the worker
restores a partition's state when it is assigned, not at its first record.
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


async def quiet_partition_finals(
    settings: Settings, kafka_admin: KafkaAccess, tmp_path: Path, restart: bool
) -> str:
    """A commune's readings then silence; with ``restart``, the worker that counted them (never
    closing quiet windows) is stopped and another started, which receives no record at all.
    The log of the worker that closed the last minutes."""
    run = uuid.uuid4().hex[:8]
    meter = METERS[0]  # alone in its commune's partition
    since, offsets = datetime.now(UTC), await indicator_offsets(kafka_admin, settings)
    # Minute-long intervals on a past day: placed where they start, one per 1-minute window.
    start = (datetime.now(UTC) - timedelta(days=12)).replace(second=0, microsecond=0)
    series = IntervalSeries(meter, run, start, timedelta(minutes=1), lambda k: 40 + 7 * k)
    # The partition starts afresh at its end, with a short grace: its watermark is this test's.
    await start_afresh(kafka_admin, "energy", GRACE_SECONDS, [meter.partition(settings)])
    idle = {"ZC_INDICATOR_IDLE_CLOSE_SECONDS": str(IDLE_CLOSE_SECONDS)}
    first_log, last_log = tmp_path / "worker.log", tmp_path / "restarted.log"
    worker = start_worker(first_log, {"ZC_INDICATOR_IDLE_CLOSE_SECONDS": "0"} if restart else idle)
    try:
        await produce_raw(kafka_admin, meter, series.records(range(READINGS)))
        await wait_counted(settings, READINGS)
        if restart:  # its last flush checkpoints the partition on the way out
            assert stop_child(worker) == 0, first_log.read_text()[-3000:]
            worker = start_worker(last_log, idle)
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
    log = (last_log if restart else first_log).read_text()
    assert finals[series_of(meter.series)] == expected, log[-3000:]
    return log


async def test_a_quiet_partition_publishes_its_last_minutes_final_without_a_later_reading(
    settings: Settings, kafka_admin: KafkaAccess, tmp_path: Path
) -> None:
    log = await quiet_partition_finals(settings, kafka_admin, tmp_path, restart=False)
    assert "quiet for" in log, log[-3000:]  # the last minutes were closed by quietness


async def test_a_partition_that_receives_nothing_after_a_restart_still_closes_its_windows(
    settings: Settings, kafka_admin: KafkaAccess, tmp_path: Path
) -> None:
    """Before, a partition's state was restored when its first record came: after a restart,
    one that received nothing kept its windows open until then."""
    log = await quiet_partition_finals(settings, kafka_admin, tmp_path, restart=True)
    assert "quiet for" in log and "restored up to offset" in log, log[-3000:]
