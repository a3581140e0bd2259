"""Kafka administration, for the service, its tests and its benchmarks: topics, their ends,
consumer groups' positions, and reading back what was written.

faust does not create the topics its agents read ("Ignoring missing topic"), and a topic
created later is only noticed after a rebalance; so the admin declares the catalogue
(``zerocarbon stack up`` does, idempotently), and each service checks at start-up that the
topics it uses are there: it holds no right to create them (docs/security.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import (
    CommitFailedError,
    GroupCoordinatorNotAvailableError,
    IllegalGenerationError,
    RebalanceInProgressError,
    TopicAlreadyExistsError,
    UnknownMemberIdError,
)
from aiokafka.structs import ConsumerRecord, OffsetAndMetadata, TopicPartition

from config.kafka_access import KafkaAccess, MissingTopics
from config.kafka_cluster import min_insync_replicas
from schemas.catalogue import channels

log = logging.getLogger(__name__)
# What the broker answers a commit while a member it still counts holds the group.
_MEMBER_STILL_THERE = (
    CommitFailedError,
    UnknownMemberIdError,
    RebalanceInProgressError,
    IllegalGenerationError,
)


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    config: dict[str, str] = field(default_factory=dict)


def catalogue(partitions: int, used_by: str | None = None) -> list[TopicSpec]:
    """Every Kafka topic of the channel catalogue (with ``used_by``, those the catalogue names it
    a producer or consumer of); ``partitions`` for those with no number of their own."""
    return [
        TopicSpec(ch.address, ch.partitions or partitions, dict(ch.config))
        for ch in channels(partitions)
        if ch.transport == "kafka"
        and (used_by is None or any(who.startswith(used_by) for who in (*ch.producers, *ch.consumers)))
    ]


async def ensure_topics(kafka: KafkaAccess, specs: list[TopicSpec], replication: int) -> list[str]:
    """Create the topics that do not exist yet, with ``replication`` copies each and the
    ``min.insync.replicas`` that goes with it (config/kafka_cluster.py); return the names
    created. A topic that exists keeps its copies (Kafka moves replicas only by reassignment)."""
    insync = {"min.insync.replicas": str(min_insync_replicas(replication))}
    specs = [replace(s, config={**s.config, **insync}) for s in specs]
    admin = AIOKafkaAdminClient(**kafka.client_options())
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [s for s in specs if s.name not in existing]
        if missing:
            # If another process of ours wins the race, the topic is there, as wanted.
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(
                    [NewTopic(s.name, s.partitions, replication, topic_configs=s.config) for s in missing]
                )
            log.info("created Kafka topics %s", [s.name for s in missing])
        present = [s for s in specs if s.name in existing]
        if present:
            # Topics created by an older version keep up with the catalogue's configuration.
            resources = [ConfigResource(ConfigResourceType.TOPIC, s.name, s.config) for s in present]
            await admin.alter_configs(resources)
        return [s.name for s in missing]
    finally:
        await admin.close()


async def require_topics(kafka: KafkaAccess, names: Iterable[str]) -> None:
    """Raise MissingTopics, naming them and what to do, unless every topic of ``names`` exists
    and is visible to ``kafka``'s principal."""
    admin = AIOKafkaAdminClient(**kafka.client_options())
    await admin.start()
    try:
        visible = set(await admin.list_topics())
    finally:
        await admin.close()
    missing = sorted(set(names) - visible)
    if missing:
        raise MissingTopics(
            f"Kafka topics {', '.join(missing)} do not exist, or the principal {kafka.username!r} may "
            "not see them: run `zerocarbon stack up` (the admin creates the catalogue and grants "
            "each principal its topics), or `zerocarbon kafka setup` against another cluster"
        )


async def topic_ends(kafka: KafkaAccess, topics: Sequence[str]) -> dict[TopicPartition, int]:
    """The current end offset of every partition of ``topics`` (to count only what comes after)."""
    producer = AIOKafkaProducer(**kafka.client_options())
    consumer = AIOKafkaConsumer(**kafka.client_options())
    await producer.start()
    await consumer.start()
    try:
        # The producer waits for a topic's metadata; a fresh consumer's cache may not have it yet.
        partitions = [TopicPartition(t, p) for t in topics for p in sorted(await producer.partitions_for(t))]
        return await consumer.end_offsets(partitions)
    finally:
        await consumer.stop()
        await producer.stop()


async def records_after(
    kafka: KafkaAccess, offsets: dict[TopicPartition, int], idle_seconds: float = 5.0
) -> list[tuple[str, bytes]]:
    """Every (topic, value) written after ``offsets``, up to the ends at the time of the call;
    TimeoutError if a partition gives nothing for ``idle_seconds`` before its end."""
    return [(r.topic, r.value or b"") for r in await consumer_records_after(kafka, offsets, idle_seconds)]


async def consumer_records_after(
    kafka: KafkaAccess, offsets: dict[TopicPartition, int], idle_seconds: float = 5.0
) -> list[ConsumerRecord[bytes, bytes]]:
    """``records_after`` whole (partition, offset, key, headers...), in each partition's order."""
    consumer = AIOKafkaConsumer(**kafka.client_options(), max_partition_fetch_bytes=16 << 20)
    await consumer.start()
    out: list[ConsumerRecord[bytes, bytes]] = []
    try:
        consumer.assign(list(offsets))
        ends = await consumer.end_offsets(list(offsets))
        for tp, offset in offsets.items():
            consumer.seek(tp, offset)
        remaining = {tp for tp in offsets if ends[tp] > offsets[tp]}
        while remaining:
            batches = await consumer.getmany(timeout_ms=int(idle_seconds * 1000), max_records=50_000)
            if not batches:
                raise TimeoutError(f"no record for {idle_seconds}s with {remaining} not read to their end")
            for tp, records in batches.items():
                out += [r for r in records if r.offset < ends[tp]]
                if records and records[-1].offset >= ends[tp] - 1:
                    remaining.discard(tp)
    finally:
        await consumer.stop()
    return out


async def create_topic(kafka: KafkaAccess, name: str, partitions: int) -> None:
    """Create one topic outside the catalogue (a benchmark's, a test's)."""
    admin = AIOKafkaAdminClient(**kafka.client_options())
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
    finally:
        await admin.close()


async def delete_topics(kafka: KafkaAccess, prefixes: Iterable[str]) -> list[str]:
    """Delete every topic whose name starts with one of ``prefixes``; the names deleted."""
    admin = AIOKafkaAdminClient(**kafka.client_options())
    await admin.start()
    try:
        wanted = tuple(prefixes)
        names = [t for t in await admin.list_topics() if t.startswith(wanted)]
        if names:
            await admin.delete_topics(names)
        return names
    finally:
        await admin.close()


async def committed_offsets(
    kafka: KafkaAccess, group: str, coordinator_wait_seconds: float = 60.0
) -> dict[TopicPartition, int]:
    """Where ``group`` has committed, partition by partition. A broker just started has no
    group coordinator until it has created its offsets topic: waited for, up to
    ``coordinator_wait_seconds``."""
    admin = AIOKafkaAdminClient(**kafka.client_options())
    await admin.start()
    try:
        deadline = asyncio.get_running_loop().time() + coordinator_wait_seconds
        while True:
            try:
                found = await admin.list_consumer_group_offsets(group)
                return {tp: meta.offset for tp, meta in found.items()}
            except GroupCoordinatorNotAvailableError:
                if asyncio.get_running_loop().time() > deadline:
                    raise
                await asyncio.sleep(0.5)
    finally:
        await admin.close()


async def commit_offsets(
    kafka: KafkaAccess, group: str, offsets: dict[TopicPartition, int], members_gone_seconds: float = 45.0
) -> None:
    """Commit ``offsets`` for ``group``, which must have no live member. A member that just
    stopped without leaving (killed, or still closing) holds the group until its session
    times out: the broker refuses the commit until then, so it is retried for up to
    ``members_gone_seconds``."""
    consumer = AIOKafkaConsumer(**kafka.client_options(), group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(list(offsets))
        deadline = asyncio.get_running_loop().time() + members_gone_seconds
        while True:
            try:
                await consumer.commit({tp: OffsetAndMetadata(offset, "") for tp, offset in offsets.items()})
                return
            except (
                CommitFailedError,
                UnknownMemberIdError,
                RebalanceInProgressError,
                IllegalGenerationError,
            ):
                if asyncio.get_running_loop().time() > deadline:
                    raise
                log.info("group %s still has a member; retrying the commit", group)
                await asyncio.sleep(1.0)
    finally:
        await consumer.stop()


async def start_group_at_end(kafka: KafkaAccess, group: str, topics: Sequence[str]) -> None:
    """Start ``group`` at the current end of every partition of ``topics``: it reads only what
    comes after."""
    await commit_offsets(kafka, group, await topic_ends(kafka, topics))
