"""Results stay exact when the worker is killed (SIGKILL) at chosen moments of a run.

2 000 readings of the tertiary golden meter of Aytré, 0.5 kWh each, one every 30 s
from midnight yesterday: 120 readings, i.e. 60 kWh, in every full hour. The worker is
killed twice: once after it counted the first part and checkpointed it, once right after
it counted readings of the second part, before its next one-second checkpoint, so that the
restarted worker must count those again from the raw records. Every hour must end at the
arithmetic of GoldenMeter.hourly_kwh (60 kWh for the full hours).
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from config.kafka_access import KafkaAccess
from config.settings import Settings
from tests.integration.golden_meters import (
    TERTIARY,
    IntervalSeries,
    forget_indicator_state,
    hourly_finals,
    indicator_offsets,
    produce_raw,
)
from tests.integration.worker_runs import start_worker, wait_counted
from zerocarbon.processes import stop_child

READINGS = 2000


async def test_hourly_totals_are_exact_across_two_sigkills(
    settings: Settings, kafka_admin: KafkaAccess, tmp_path: Path
) -> None:
    since, offsets = datetime.now(UTC), await indicator_offsets(kafka_admin, settings)
    day = since.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)
    meter = TERTIARY
    series = IntervalSeries(meter, uuid.uuid4().hex[:8], day, timedelta(seconds=30), lambda k: 500)
    await forget_indicator_state(kafka_admin, settings, [meter.partition(settings)])
    log = tmp_path / "worker.log"
    every_second = {"ZC_INDICATOR_CHECKPOINT_SECONDS": "1"}  # so the first kill comes after a checkpoint
    worker = start_worker(log, every_second)
    try:
        await produce_raw(kafka_admin, meter, series.records(range(0, 800)))
        await asyncio.sleep(1.5)
        worker.kill()  # SIGKILL: no commit, no flush
        worker.wait()
        worker = start_worker(log, every_second)
        await produce_raw(kafka_admin, meter, series.records(range(800, 1600)))
        await wait_counted(settings, at_least=1)  # this worker has counted some of them...
        worker.kill()  # ...and dies before checkpointing them (the flush runs once a second)
        worker.wait()
        worker = start_worker(log, every_second)
        await produce_raw(kafka_admin, meter, series.records(range(1600, READINGS)))
        await produce_raw(kafka_admin, meter, series.closer(READINGS))
        expected = {meter: series.hourly_kwh(READINGS)}
        finals = await hourly_finals(kafka_admin, settings, expected, since, timeout=120, offsets=offsets)
    finally:
        stop_child(worker)
    assert sum(v == 60.0 for v in expected[meter].values()) >= 15  # the full hours
    assert finals == expected
