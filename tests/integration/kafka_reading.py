"""Kafka helpers of the tests: read back what the bridge wrote (every payload of every batch
record) and the dead letters of a run; the rest is streams/kafka_admin.py with the suite's
settings."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from config.settings import Settings
from schemas.batch_envelope import CONTENT_TYPE_HEADER, FRAMES_CONTENT_TYPE, decode_frames
from schemas.catalogue import DEAD_LETTER_TOPIC
from streams import kafka_admin


async def read_payloads(
    bootstrap: str,
    topics: list[str],
    keep: Callable[[str, bytes], bool],
    done: Callable[[list[tuple[str, bytes]]], bool],
    timeout: float,
) -> list[tuple[str, bytes]]:
    """(source topic, payload) pairs unpacked from the topics, filtered by ``keep``,
    until ``done`` says enough or ``timeout`` seconds pass."""
    consumer = AIOKafkaConsumer(
        *topics, bootstrap_servers=bootstrap, auto_offset_reset="earliest", max_partition_fetch_bytes=16 << 20
    )
    await consumer.start()
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


async def dead_letters_holding(settings: Settings, marker: bytes, timeout: float) -> list[Any]:
    """The dead letters whose payload holds ``marker`` (a run's id), parsed; those of the first
    batch that has any, or none after ``timeout`` seconds."""
    found = await read_payloads(
        settings.kafka_bootstrap,
        [DEAD_LETTER_TOPIC],
        keep=lambda _t, p: marker in p,
        done=bool,
        timeout=timeout,
    )
    return [json.loads(payload) for _, payload in found]


async def start_group_at_end(settings: Settings, topic: str, group: str) -> None:
    """Commit the end of every partition of ``topic`` for a new consumer group."""
    await kafka_admin.start_group_at_end(settings.kafka_bootstrap, group, [topic])


async def topic_ends(settings: Settings, topics: list[str]) -> dict[TopicPartition, int]:
    """The current end of every partition of ``topics`` (to count only what comes after)."""
    return await kafka_admin.topic_ends(settings.kafka_bootstrap, topics)


async def records_after(settings: Settings, offsets: dict[TopicPartition, int]) -> list[tuple[str, bytes]]:
    """Every (topic, value) written after ``offsets``, up to the ends at the time of the call."""
    return await kafka_admin.records_after(settings.kafka_bootstrap, offsets)
