"""One broker of three SIGKILLed under load (issue 23): nothing lost, nothing stalls.

The module starts a stack of its own beside the suite's, with a KRaft cluster of three
brokers (``ZC_KAFKA_BROKERS=3``): every topic has three copies and ``min.insync.replicas=2``.
Devices publish through the bridge; once the load flows, the broker that leads the most
partitions of the energy topics is SIGKILLed and left down. While it is down, the partitions
it led must go on: written to (the bridge's records reach them under their new leaders) and
read (the worker's group commits past where they stood). After the load, the fault suite's
reconciliation runs with the broker still down: every reading counted once or dead-lettered
with a reason, InfluxDB holding what the accepted readings carry. Then the broker is started
again and every partition gets its three in-sync copies back.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import TopicPartition

from config.kafka_access import KafkaAccess
from config.settings import Settings
from schemas import kafka_principals
from schemas.catalogue import raw_topic, valid_topic
from stack import control
from stack.kafka_broker import KafkaBroker
from stack.stack_config import StackConfig
from streams.kafka_admin import catalogue, committed_offsets, ensure_topics, topic_ends
from tests.faults.territory import Territory
from tests.separate_stack import separate_stack
from zerocarbon import component_configs

RATE = 1500
HOT_TOPICS = [raw_topic("energy"), valid_topic("energy")]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, KafkaAccess, StackConfig]]:
    """A stack of three brokers, Mosquitto and InfluxDB in a home of its own; every process
    the module starts (worker, bridge, sink, simulator) inherits its settings."""
    with separate_stack(tmp_path_factory.mktemp("cluster-stack"), ZC_KAFKA_BROKERS="3") as settings:
        config = component_configs.stack_config(settings)
        try:
            report = control.up(config)
            assert all(service["healthy"] for service in report), report
            admin = component_configs.kafka_access(settings, kafka_principals.ADMIN)
            topics = catalogue(settings.kafka_partitions)
            asyncio.run(ensure_topics(admin, topics, settings.kafka_replication))
            yield settings, admin, config
        finally:
            control.down(config)


async def partition_states(kafka: KafkaAccess, topics: list[str]) -> dict[TopicPartition, dict[str, Any]]:
    """Each partition's leader, replicas and in-sync replicas, as the cluster reports them."""
    admin = AIOKafkaAdminClient(**kafka.client_options())
    await admin.start()
    try:
        described = await admin.describe_topics(topics)
    finally:
        await admin.close()
    return {TopicPartition(t["topic"], p["partition"]): p for t in described for p in t["partitions"]}


async def until(condition: Any, what: str, timeout: float = 120) -> float:
    """Seconds until the coroutine function ``condition`` returns true; fails after ``timeout``."""
    started = time.monotonic()
    while not await condition():
        assert time.monotonic() - started < timeout, f"{what}: not within {timeout:.0f}s"
        await asyncio.sleep(0.5)
    return time.monotonic() - started


async def test_a_broker_sigkilled_under_load_loses_nothing_and_stalls_nothing(
    cluster: tuple[Settings, KafkaAccess, StackConfig], tmp_path: Path
) -> None:
    settings, kafka, config = cluster
    assert settings.kafka_brokers == 3 and settings.kafka_replication == 3
    async with Territory(settings, kafka, config, tmp_path) as territory:
        load = await territory.start_load(count=RATE * 90, rate=RATE)
        await territory.wait_raw_records(RATE)  # about 10 s: a raw record carries about 10 readings

        states = await partition_states(kafka, HOT_TOPICS)
        assert all(len(state["isr"]) == 3 for state in states.values()), states
        victim_node, _ = Counter(state["leader"] for state in states.values()).most_common(1)[0]
        orphaned = [tp for tp, state in states.items() if state["leader"] == victim_node]
        victim = territory.stack_service(KafkaBroker(config, victim_node).name)
        pid = victim.process.pid()
        assert pid is not None
        os.killpg(pid, signal.SIGKILL)
        while victim.process.is_running():
            await asyncio.sleep(0.1)
        print(f"SIGKILLed {victim.name} (node {victim_node}), leader of {sorted(map(tuple, orphaned))}")
        ends_at_kill = await topic_ends(kafka, HOT_TOPICS)

        async def written_on() -> bool:
            ends = await topic_ends(kafka, HOT_TOPICS)
            return all(ends[tp] > ends_at_kill[tp] for tp in orphaned)

        async def read_on() -> bool:
            committed = await committed_offsets(kafka, settings.worker_id)
            return all(committed.get(tp, 0) > ends_at_kill[tp] for tp in orphaned)

        print(f"its partitions written to again after {await until(written_on, 'written'):.1f} s")
        print(f"and read past the kill after {await until(read_on, 'read'):.1f} s")

        after = await partition_states(kafka, HOT_TOPICS)
        assert all(state["leader"] != victim_node for state in after.values()), after
        report = await load.finished()
        await territory.reconcile(report)
        for process in (territory.worker, territory.bridge, territory.sink):
            assert process.running and process.restarts == 0, process.log.read_text()[-3000:]

        await asyncio.to_thread(victim.start)
        await asyncio.to_thread(victim.wait_ready)
        topics = [spec.name for spec in catalogue(settings.kafka_partitions)]

        async def whole_again() -> bool:
            return all(len(state["isr"]) == 3 for state in (await partition_states(kafka, topics)).values())

        seconds = await until(whole_again, "three in-sync copies again")
        print(f"every partition had three in-sync copies {seconds:.1f} s after the restart")
