"""Late readings correct every window size exactly through SIGKILLs during the backfill (issue 20).

The scenario of test_late_readings.py (late_scenario.py: Aytré's live quarter-hours, then a
partner's next-day delivery, a device's 3-hour backlog and a week of history, all late), with
a worker this module starts itself. The live readings go through undisturbed, so that the
late ones correct windows already published final. The late deliveries, 198 readings, are
published in ``CHUNKS`` chunks of records of ``READINGS_PER_RECORD`` readings; after one
chunk drawn at random in each third of them, once the worker is counting, it is SIGKILLed
after a random delay of up to ``KILL_WITHIN_SECONDS`` (a checkpoint period: the kill lands
anywhere between the flushes, the checkpoint and the store's commit) and restarted. The seed
printed replays the values, chunks and kills (not the timing).

InfluxDB must then hold exactly what one uninterrupted worker leaves (late_scenario.py:
every window equal to the independent computation, every corrected window final with
revision >= 1), and no reading of the run may be dead-lettered. The worker's counters are
not checked: they are in memory, so each restart starts them at zero, and records replayed
after a kill are counted again by validation (its recent event ids are in memory too) while
the indicator stage skips them (invariant 4 of streams/indicators/engine.py).
"""

from __future__ import annotations

import asyncio
import random
import uuid
from pathlib import Path

from config.kafka_access import KafkaAccess
from config.settings import Settings
from schemas.catalogue import DEAD_LETTER_TOPIC
from schemas.local_calendar import ZoneCalendar
from sinks.influx_target import InfluxTarget
from streams.kafka_admin import records_after, topic_ends
from tests.integration.late_scenario import influx_differences, late_scenario, publish, publish_live
from tests.integration.worker_runs import start_worker
from zerocarbon.demo import worker_counters
from zerocarbon.processes import stop_child

CHUNKS = 12
KILLS = 3
"""One kill in each third of the chunks."""
READINGS_PER_RECORD = 5
KILL_WITHIN_SECONDS = 5.0


def taken(settings: Settings) -> int:
    """The records the running worker's indicator stage has taken (counted, late or skipped);
    0 while its web server is not up."""
    try:
        return sum(worker_counters(settings)["indicators"].values())
    except OSError:
        return 0


async def counting(settings: Settings, more_than: int, timeout: float = 90) -> None:
    """Until the running worker's indicator stage has taken more than ``more_than`` records:
    its partitions are assigned and restored, so a kill now lands in its work."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while taken(settings) <= more_than:
        if loop.time() > deadline:
            raise TimeoutError(f"the worker took no record in {timeout:.0f} s")
        await asyncio.sleep(0.05)


async def test_late_readings_correct_every_window_size_through_sigkills(
    settings: Settings,
    kafka_admin: KafkaAccess,
    influx_target: InfluxTarget,
    fresh_partition: None,
    sink: Path,
    tmp_path: Path,
) -> None:
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    run = uuid.uuid4().hex[:8]  # event ids unique to this run, whatever the seed
    scenario = late_scenario(run, settings.indicator_grace_seconds, rng, ZoneCalendar(settings.time_zone))
    deliveries = scenario.deliveries
    chunks = [
        deliveries[len(deliveries) * i // CHUNKS : len(deliveries) * (i + 1) // CHUNKS] for i in range(CHUNKS)
    ]
    third = CHUNKS // KILLS
    kills = [k * third + rng.randrange(third) for k in range(KILLS)]
    delays = [round(rng.uniform(0.0, KILL_WITHIN_SECONDS), 2) for _ in kills]
    print(
        f"seed {seed} (run {run}): {len(deliveries)} late readings in {CHUNKS} chunks, "
        f"SIGKILL after chunks {kills}, {delays} s after the worker counts"
    )  # to replay a failure
    letters_from = await topic_ends(kafka_admin, [DEAD_LETTER_TOPIC])
    log = tmp_path / "worker.log"
    worker = start_worker(log)
    try:
        await publish_live(kafka_admin, settings, scenario)
        for i, chunk in enumerate(chunks):
            before = taken(settings)
            await publish(kafka_admin, chunk, per_record=READINGS_PER_RECORD)
            if i in kills:
                await counting(settings, before)
                await asyncio.sleep(delays[kills.index(i)])
                worker.kill()  # SIGKILL: no commit, no flush, no checkpoint
                worker.wait()
                worker = start_worker(log)
        problems = await influx_differences(influx_target, scenario, timeout=180)
    finally:
        stop_child(worker)
    assert not problems, (
        f"seed {seed}: {len(problems)} of {len(scenario.expected)} windows differ "
        f"(worker log {log}): {problems[:8]}"
    )
    letters = [value for _, value in await records_after(kafka_admin, letters_from) if run.encode() in value]
    assert not letters, (
        f"seed {seed}: {len(letters)} dead letters of the run, the first: {letters[0][:2000]!r}"
    )
