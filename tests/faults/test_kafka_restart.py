"""Kafka away under load (issue 19): stopped for 60 s, or SIGKILLed, then started again.

Devices keep publishing at 2 000 readings/s; Mosquitto holds what the bridge cannot forward
(the bridge stops acknowledging and keeps its socket). When Kafka is back, everything is
reconciled (every reading counted once, or dead-lettered with a reason; InfluxDB holds the
consumption the accepted readings carry) and no reading reaches Kafka twice. Before issue 19
the bridge lost its MQTT link after 45 s of held socket and sent 20 000 readings again.

The seconds until the indicators move again after Kafka is ready are printed (figures for the
issue's note); the worker, the bridge and the sink must still be the processes started first.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

from config.kafka_access import KafkaAccess
from config.settings import Settings
from schemas.catalogue import INDICATOR_TOPIC
from stack.stack_config import StackConfig
from streams.kafka_admin import topic_ends
from tests.faults.territory import Territory

RATE = 2000


async def indicators_move(territory: Territory, timeout: float = 300) -> float:
    """Seconds until zc.indicators grows (Kafka being ready when this is called)."""
    started = time.monotonic()
    ends = await topic_ends(territory.kafka, [INDICATOR_TOPIC])
    while await topic_ends(territory.kafka, [INDICATOR_TOPIC]) == ends:
        assert time.monotonic() - started < timeout, (
            f"no indicator update {timeout:.0f}s after Kafka came back"
        )
        await asyncio.sleep(0.2)
    return time.monotonic() - started


async def kafka_away_under_load(territory: Territory, away_seconds: float, kill: bool) -> None:
    readings = int(RATE * (away_seconds + 30))  # the load runs before, during and after
    load = await territory.start_load(count=readings, rate=RATE)
    await territory.wait_raw_records(200)
    kafka = territory.stack_service("kafka")
    if kill:
        pid = kafka.process.pid()
        assert pid is not None
        os.killpg(pid, signal.SIGKILL)
        while kafka.process.is_running():
            await asyncio.sleep(0.1)
    else:
        assert await asyncio.to_thread(kafka.stop)
    await asyncio.sleep(away_seconds)
    assert not load.done, "the load ended while Kafka was away: raise the count"
    await asyncio.to_thread(kafka.start)
    await asyncio.to_thread(kafka.wait_ready)
    print(f"indicators moved {await indicators_move(territory):.1f} s after Kafka was ready again")
    report = await load.finished()
    await territory.reconcile(report)
    for process in (territory.worker, territory.bridge, territory.sink):
        assert process.running and process.restarts == 0, process.log.read_text()[-3000:]
    overlaps = territory.worker.log.read_text().count("is overlapping")
    bridge_errors = sum(" ERROR " in line for line in territory.bridge.log.read_text().splitlines())
    print(f"flush timer overlaps: {overlaps}; bridge ERROR lines: {bridge_errors}")


async def test_kafka_stopped_for_a_minute_under_load_loses_nothing_and_repeats_nothing(
    settings: Settings, kafka_admin: KafkaAccess, stack_config: StackConfig, tmp_path: Path
) -> None:
    async with Territory(settings, kafka_admin, stack_config, tmp_path) as territory:
        await kafka_away_under_load(territory, away_seconds=60, kill=False)


async def test_kafka_sigkilled_under_load_loses_nothing_and_repeats_nothing(
    settings: Settings, kafka_admin: KafkaAccess, stack_config: StackConfig, tmp_path: Path
) -> None:
    async with Territory(settings, kafka_admin, stack_config, tmp_path) as territory:
        await kafka_away_under_load(territory, away_seconds=15, kill=True)
