"""The suite's own Kafka topics and consumer groups: create, fill, start at the end, delete.

Bench topics are named ``zc.bench.*`` and deleted after use. Our worker runs under a group of
its own (``BENCH_WORKER_ID``), started at the current end of every topic it reads, so
neither the service's group nor anybody's backlog is touched; the indicator state of the
valid partitions is started afresh (an empty checkpoint at their end, as the integration
tests do), so that the workload's event times are judged against their own watermark.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence

from aiokafka import AIOKafkaProducer, TopicPartition

from config.settings import Settings
from schemas.catalogue import raw_topic, valid_topic
from schemas.families import FAMILIES
from streams import kafka_admin
from streams.indicators.checkpoints import start_afresh

BENCH_WORKER_ID = "zc-bench-worker"
Headers = Sequence[tuple[str, bytes]]


def worker_topics(settings: Settings) -> list[str]:
    """Every topic `zerocarbon worker` reads."""
    return [
        *(raw_topic(name) for name in FAMILIES),
        *(valid_topic(name) for name in FAMILIES),
    ]


async def create_topic(settings: Settings, name: str, partitions: int | None = None) -> None:
    await kafka_admin.create_topic(settings.kafka_bootstrap, name, partitions or settings.kafka_partitions)


async def delete_topics(settings: Settings, prefixes: Iterable[str]) -> list[str]:
    """Delete every topic whose name starts with one of ``prefixes``; the names deleted."""
    return await kafka_admin.delete_topics(settings.kafka_bootstrap, prefixes)


async def produce(
    settings: Settings, topic: str, messages: Iterable[tuple[int, bytes | None, bytes]], headers: Headers = ()
) -> int:
    """Write (partition, key, value) messages, each acknowledged by Kafka; the count."""
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap, acks="all", linger_ms=5, max_batch_size=1 << 20,
        max_request_size=8 << 20,
    )  # fmt: skip
    await producer.start()
    try:
        sent = [
            await producer.send(topic, value, key=key, partition=partition, headers=list(headers))
            for partition, key, value in messages
        ]
        await asyncio.gather(*sent)
        return len(sent)
    finally:
        await producer.stop()


async def topic_ends(settings: Settings, topics: Sequence[str]) -> dict[TopicPartition, int]:
    """The current end of every partition of ``topics``."""
    return await kafka_admin.topic_ends(settings.kafka_bootstrap, topics)


async def start_group_at_end(settings: Settings, group: str, topics: Sequence[str]) -> None:
    """Commit the current end of every partition of ``topics`` for ``group``."""
    await kafka_admin.start_group_at_end(settings.kafka_bootstrap, group, topics)


async def forget_indicator_state(settings: Settings, family: str = "energy") -> None:
    """Checkpoint an empty indicator state at the end of every partition of zc.valid.<family>:
    the next worker counts only what comes after, against its own watermark."""
    await start_afresh(settings.kafka_bootstrap, family, settings.indicator_grace_seconds)


async def read_after(
    settings: Settings, offsets: dict[TopicPartition, int], idle_seconds: float = 2.0
) -> list[bytes]:
    """Every value written after ``offsets``, up to the ends at the time of the call."""
    written = await kafka_admin.records_after(settings.kafka_bootstrap, offsets, idle_seconds)
    return [value for _, value in written]


async def committed_offsets(settings: Settings, group: str) -> dict[TopicPartition, int]:
    return await kafka_admin.committed_offsets(settings.kafka_bootstrap, group)


async def skip_suite_records(
    settings: Settings,
    group: str,
    committed_before: dict[TopicPartition, int],
    ends_before: dict[TopicPartition, int],
) -> list[str]:
    """Move ``group`` past what the suite wrote, on the partitions where it had read everything
    when the suite started and has not moved since: the service's worker and sink would
    otherwise process hundreds of thousands of benchmark records at their next start. Returns
    the partitions moved; partitions that had a backlog of their own are left as they were."""
    now = await committed_offsets(settings, group)
    moved = [
        tp
        for tp, offset in committed_before.items()
        if tp in ends_before and offset >= ends_before[tp] and now.get(tp) == offset
    ]
    if not moved:
        return []
    ends = await topic_ends(settings, sorted({tp.topic for tp in moved}))
    await kafka_admin.commit_offsets(settings.kafka_bootstrap, group, {tp: ends[tp] for tp in moved})
    return [f"{tp.topic}:{tp.partition}" for tp in moved if ends[tp] > committed_before[tp]]
