"""Read back what the bridge wrote to Kafka: every payload of every batch record."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer

from schemas.batch_envelope import CONTENT_TYPE_HEADER, FRAMES_CONTENT_TYPE, decode_frames


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
