"""Kafka helpers of the tests: read back what the bridge wrote (every payload of every batch
record) and the dead letters of a run, with the access a test gives (the ``kafka_admin``
fixture's); the rest is streams/kafka_admin.py."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from config.kafka_access import KafkaAccess
from schemas.batch_envelope import CONTENT_TYPE_HEADER, FRAMES_CONTENT_TYPE, decode_frames
from schemas.catalogue import DEAD_LETTER_TOPIC


async def read_payloads(
    kafka: KafkaAccess,
    topics: list[str],
    keep: Callable[[str, bytes], bool],
    done: Callable[[list[tuple[str, bytes]]], bool],
    timeout: float,
    start: dict[TopicPartition, int] | None = None,
) -> list[tuple[str, bytes]]:
    """(source topic, payload) pairs unpacked from the topics, filtered by ``keep``, until
    ``done`` says enough or ``timeout`` seconds pass; from ``start`` (the partitions of the
    topics and their offsets) if given, else from the beginning."""
    consumer = AIOKafkaConsumer(
        *([] if start else topics),
        **kafka.client_options(),
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=16 << 20,
    )
    await consumer.start()
    if start:
        consumer.assign(list(start))
        for partition, offset in start.items():
            consumer.seek(partition, offset)
    found: list[tuple[str, bytes]] = []
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline and not done(found):
            batches = await consumer.getmany(timeout_ms=500, max_records=10_000)
            for records in batches.values():
                for record in records:
                    headers = dict(record.headers or [])
                    value = record.value or b""
                    if headers.get(CONTENT_TYPE_HEADER) == FRAMES_CONTENT_TYPE:
                        items = list(decode_frames(value))
                    else:
                        items = [(record.topic, value)]
                    found += [(t, p) for t, p in items if keep(t, p)]
    finally:
        await consumer.stop()
    return found


async def dead_letters_holding(kafka: KafkaAccess, marker: bytes, timeout: float) -> list[Any]:
    """The dead letters whose payload holds ``marker`` (a run's id), parsed; those of the first
    batch that has any, or none after ``timeout`` seconds."""
    found = await read_payloads(
        kafka,
        [DEAD_LETTER_TOPIC],
        keep=lambda _t, p: marker in p,
        done=bool,
        timeout=timeout,
    )
    return [json.loads(payload) for _, payload in found]
