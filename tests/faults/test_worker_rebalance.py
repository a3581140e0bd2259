"""The worker SIGKILLed while the group rebalances onto a second worker joining, under load
(issue 19): the second takes every partition over from the last checkpoints and commits;
the readings the first had handled since are read again, and nothing counts twice in
InfluxDB (the indicator state remembers each producer's event ids across checkpoints)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from config.kafka_access import KafkaAccess
from config.settings import Settings
from stack.stack_config import StackConfig
from tests.faults.territory import ServiceProcess, Territory

READINGS = 60_000  # 30 s at 2 000 readings/s


async def test_a_worker_killed_during_a_rebalance_loses_nothing_and_counts_nothing_twice(
    settings: Settings, kafka_admin: KafkaAccess, stack_config: StackConfig, tmp_path: Path
) -> None:
    async with Territory(settings, kafka_admin, stack_config, tmp_path) as territory:
        second = ServiceProcess(
            ["worker"],
            tmp_path / "second-worker.log",
            {
                "ZC_REFERENCE_DIR": str(territory.registry),
                "ZC_WORKER_WEB_PORT": str(settings.worker_web_port + 1),
            },
        )
        load = await territory.start_load(count=READINGS)
        try:
            await territory.wait_raw_records(200)
            await asyncio.to_thread(second.start)  # it joins: the group starts rebalancing
            territory.worker.kill()  # the first dies before the rebalance has settled
            assert not load.done, "the load ended before the kill: raise READINGS"
            report = await load.finished()
            await territory.reconcile(report)
            assert second.running and second.restarts == 0, second.log.read_text()[-3000:]
        finally:
            await asyncio.to_thread(second.stop)
