"""Consumer lag: how far each consumer group (the worker, the sink) is behind the end of the
topics it reads, from its committed offsets and the topics' end offsets."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from config.kafka_access import KafkaAccess


@dataclass(frozen=True)
class TopicLag:
    group: str
    topic: str
    lag: int  # messages written and not yet committed by the group, over the topic's partitions
    partitions: int


def lag_per_topic(
    group: str, committed: Mapping[TopicPartition, int], ends: Mapping[TopicPartition, int]
) -> list[TopicLag]:
    """Lag of ``group`` per topic: Σ (end - committed) over the partitions it has committed.

    A partition without an end offset (deleted since) is left out; a commit past the end
    (a topic recreated) counts as no lag rather than a negative one.
    """
    per_topic: dict[str, list[int]] = {}
    for tp, offset in committed.items():
        if tp not in ends or offset < 0:
            continue
        per_topic.setdefault(tp.topic, []).append(max(ends[tp] - offset, 0))
    return [
        TopicLag(group=group, topic=topic, lag=sum(lags), partitions=len(lags))
        for topic, lags in sorted(per_topic.items())
    ]


class ConsumerLagReader:
    """Reads committed offsets (admin API) and end offsets (a consumer without a group)."""

    def __init__(self, kafka: KafkaAccess) -> None:
        self._admin = AIOKafkaAdminClient(**kafka.client_options(), request_timeout_ms=5000)
        self._ends = AIOKafkaConsumer(**kafka.client_options(), enable_auto_commit=False)

    async def start(self) -> None:
        await self._admin.start()
        await self._ends.start()

    async def close(self) -> None:
        await self._ends.stop()
        await self._admin.close()

    async def lag(self, groups: list[str]) -> list[TopicLag]:
        """The lag of every group per topic; a group that never committed has no rows."""
        out: list[TopicLag] = []
        for group in groups:
            offsets = await self._admin.list_consumer_group_offsets(group)
            committed = {tp: meta.offset for tp, meta in offsets.items()}
            ends = await self._ends.end_offsets(list(committed)) if committed else {}
            out += lag_per_topic(group, committed, ends)
        return out
