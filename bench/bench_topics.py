"""The suite's own Kafka topics and consumer groups: create, fill, start at the end, delete.

The suite reaches Kafka as the admin (``admin_access``): it creates and deletes its topics,
writes its workloads, reads results back and moves consumer groups, none of which a service
principal may do; the services it starts run under their own principals.

Bench topics are named ``zc.bench.*`` and deleted after use. Our worker runs under a group of
its own (``BENCH_WORKER_ID``), started at the current end of every topic it reads, so
neither the service's group nor anybody's backlog is touched; the indicator state of the
valid partitions is started afresh (an empty checkpoint at their end, as the integration
tests do), so that the workload's event times are judged against their own watermark.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from typing import Any

from aiokafka import AIOKafkaProducer, TopicPartition

from config.kafka_access import KafkaAccess
from config.settings import Settings
from schemas.catalogue import INDICATOR_TOPIC, raw_topic, valid_topic
from schemas.families import FAMILIES
from schemas.kafka_principals import ADMIN, SINK, VIEW, WORKER, KafkaAcl, worker_acls
from stack.kafka_identities import KafkaIdentities
from streams import kafka_admin
from streams.indicators.checkpoints import start_afresh
from zerocarbon.component_configs import kafka_access, kafka_usernames

BENCH_WORKER_ID = "zc-bench-worker"
Headers = Sequence[tuple[str, bytes]]


def admin_access(settings: Settings) -> KafkaAccess:
    """The Kafka admin's access (a super user), as `zerocarbon stack up` generated its login."""
    return kafka_access(settings, ADMIN)


async def declare_catalogue(settings: Settings) -> list[str]:
    """The service's topics, as `zerocarbon stack up` declares them (``control.up`` does not):
    no service may create one; the names created. The service principals may also use the
    suite's own names (``bench_grants``)."""
    admin = admin_access(settings)
    usernames = kafka_usernames(settings)
    async with KafkaIdentities(admin) as identities:
        for principal, acls in bench_grants().items():
            await identities.grant(usernames[principal], acls)
    return await kafka_admin.ensure_topics(
        admin, kafka_admin.catalogue(settings.kafka_partitions), settings.kafka_replication
    )


def bench_grants() -> dict[str, tuple[KafkaAcl, ...]]:
    """What the services run by the suite need beyond their roles: the worker runs as
    ``BENCH_WORKER_ID``, the sinks read ``zc.bench.*`` topics in ``*bench-sink-*`` groups, the
    page describes those. Granted on the isolated stack the suite runs on, never elsewhere."""
    sink_groups = (KafkaAcl("group", "bench-sink-", "read", "prefixed"),
                   KafkaAcl("group", "zc-bench-sink-", "read", "prefixed"))  # fmt: skip
    return {
        WORKER: worker_acls(BENCH_WORKER_ID),
        SINK: (KafkaAcl("topic", "zc.bench.", "read", "prefixed"), *sink_groups),
        VIEW: tuple(KafkaAcl("group", g.name, "describe", "prefixed") for g in sink_groups),
    }


def worker_topics(settings: Settings) -> list[str]:
    """Every topic `zerocarbon worker` reads."""
    return [
        *(raw_topic(name) for name in FAMILIES),
        *(valid_topic(name) for name in FAMILIES),
    ]


async def create_topic(settings: Settings, name: str, partitions: int | None = None) -> None:
    await kafka_admin.create_topic(admin_access(settings), name, partitions or settings.kafka_partitions)


async def delete_topics(settings: Settings, prefixes: Iterable[str]) -> list[str]:
    """Delete every topic whose name starts with one of ``prefixes``; the names deleted."""
    return await kafka_admin.delete_topics(admin_access(settings), prefixes)


async def produce(
    settings: Settings, topic: str, messages: Iterable[tuple[int, bytes | None, bytes]], headers: Headers = ()
) -> int:
    """Write (partition, key, value) messages, each acknowledged by Kafka; the count."""
    producer = AIOKafkaProducer(
        **admin_access(settings).client_options(), acks="all", linger_ms=5, max_batch_size=1 << 20,
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
    return await kafka_admin.topic_ends(admin_access(settings), topics)


async def start_group_at_end(settings: Settings, group: str, topics: Sequence[str]) -> None:
    """Commit the current end of every partition of ``topics`` for ``group``."""
    await kafka_admin.start_group_at_end(admin_access(settings), group, topics)


async def forget_indicator_state(settings: Settings, family: str = "energy") -> None:
    """Checkpoint an empty indicator state at the end of every partition of zc.valid.<family>:
    the next worker counts only what comes after, against its own watermark."""
    await start_afresh(admin_access(settings), family, settings.indicator_grace_seconds)


async def read_after(
    settings: Settings, offsets: dict[TopicPartition, int], idle_seconds: float = 2.0
) -> list[bytes]:
    """Every value written after ``offsets``, up to the ends at the time of the call."""
    written = await kafka_admin.records_after(admin_access(settings), offsets, idle_seconds)
    return [value for _, value in written]


async def committed_offsets(settings: Settings, group: str) -> dict[TopicPartition, int]:
    return await kafka_admin.committed_offsets(admin_access(settings), group)


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
    await kafka_admin.commit_offsets(admin_access(settings), group, {tp: ends[tp] for tp in moved})
    return [f"{tp.topic}:{tp.partition}" for tp in moved if ends[tp] > committed_before[tp]]


def service_groups(settings: Settings) -> dict[str, Any]:
    """Where the service's own worker and sink groups stand, and their topics' ends, now: a
    benchmark moves them past its own records at the end where they had read everything
    before (``skip_suite_records``)."""
    groups = {
        g: asyncio.run(committed_offsets(settings, g)) for g in (settings.worker_id, settings.sink_group)
    }
    topics = sorted({tp.topic for offsets in groups.values() for tp in offsets} | {INDICATOR_TOPIC})
    return {"committed": groups, "ends": asyncio.run(topic_ends(settings, topics))}
