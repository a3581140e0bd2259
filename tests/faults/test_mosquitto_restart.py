"""Mosquitto restarted under load (issue 19): the simulator's QoS 1 publisher reconnects and
sends again what was not acknowledged, the bridge resumes its persistent session; nothing is
lost, and no reading reaches Kafka twice."""

from __future__ import annotations

import asyncio
from pathlib import Path

from config.kafka_access import KafkaAccess
from config.settings import Settings
from stack.stack_config import StackConfig
from tests.faults.territory import Territory

READINGS = 40_000  # 20 s at 2 000 readings/s


async def test_a_mosquitto_restart_under_load_loses_nothing_and_repeats_nothing(
    settings: Settings, kafka_admin: KafkaAccess, stack_config: StackConfig, tmp_path: Path
) -> None:
    async with Territory(settings, kafka_admin, stack_config, tmp_path) as territory:
        load = await territory.start_load(count=READINGS)
        await territory.wait_raw_records(200)  # a few seconds of readings through the bridge
        mosquitto = territory.stack_service("mosquitto")
        assert not load.done, "the load ended before the restart: raise READINGS"
        assert await asyncio.to_thread(mosquitto.stop)
        await asyncio.to_thread(mosquitto.start)
        await asyncio.to_thread(mosquitto.wait_ready)
        assert not load.done, "the load ended during the restart: raise READINGS"
        report = await load.finished()
        await territory.reconcile(report)
        assert territory.bridge.running and territory.bridge.restarts == 0
