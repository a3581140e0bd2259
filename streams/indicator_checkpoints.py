"""Checkpoints of the indicator state: one compacted record per source partition.

faust tables can only be written inside stream iteration, and the checkpoint is taken by the
agent's one-second flush, so checkpoints live in a compacted topic of their own, read back
when a worker first meets a partition.
"""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition

from schemas.catalogue import CHECKPOINT_TOPIC


def checkpoint_key(topic: str, partition: int) -> bytes:
    return f"{topic}:{partition}".encode()


async def read_checkpoints(bootstrap: str) -> dict[bytes, bytes]:
    """The latest checkpoint of every source partition (the topic's last value per key)."""
    tp = TopicPartition(CHECKPOINT_TOPIC, 0)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, max_partition_fetch_bytes=16 << 20
    )
    await consumer.start()
    latest: dict[bytes, bytes] = {}
    try:
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        end = (await consumer.end_offsets([tp]))[tp]
        while await consumer.position(tp) < end:
            batches = await consumer.getmany(tp, timeout_ms=1000)
            for record in batches.get(tp, []):
                if record.key is None:
                    continue
                if record.value is None:  # a tombstone: that partition's state was reset
                    latest.pop(record.key, None)
                else:
                    latest[record.key] = record.value
    finally:
        await consumer.stop()
    return latest
