"""A worker reads the checkpoint topic forward from where it stopped, and knows what a whole
read knows: the latest checkpoint of each key, none for a key reset by a tombstone."""

from __future__ import annotations

import uuid

from aiokafka import AIOKafkaProducer

from config.kafka_access import KafkaAccess
from config.settings import Settings
from schemas.catalogue import CHECKPOINT_TOPIC
from schemas.kafka_principals import WORKER
from streams.indicators.checkpoints import CheckpointReader
from streams.kafka_admin import catalogue, ensure_topics
from zerocarbon.component_configs import kafka_access


async def _write(kafka: KafkaAccess, records: list[tuple[bytes, bytes | None]]) -> None:
    producer = AIOKafkaProducer(**kafka.client_options(), acks="all")
    await producer.start()
    try:
        for key, value in records:
            await producer.send_and_wait(CHECKPOINT_TOPIC, value, key=key)
    finally:
        await producer.stop()


async def test_reading_forward_gives_what_a_whole_read_gives(
    settings: Settings, kafka_admin: KafkaAccess
) -> None:
    await ensure_topics(kafka_admin, catalogue(settings.kafka_partitions), settings.kafka_replication)
    run = uuid.uuid4().hex[:8]
    a, b, c = (f"test.reader-{run}:{n}".encode() for n in range(3))
    await _write(kafka_admin, [(a, b"a1"), (b, b"b1")])
    worker = kafka_access(settings, WORKER)  # the reader is the worker's: it reads as the worker
    reader = CheckpointReader(worker)
    first = await reader.read()
    assert (first[a], first[b]) == (b"a1", b"b1")
    position = reader.position

    await _write(kafka_admin, [(a, b"a2"), (c, b"c1"), (b, None)])  # b reset by a tombstone
    again = await reader.read()
    assert reader.position >= position + 3
    assert (again[a], again[c], b in again) == (b"a2", b"c1", False)

    whole = await CheckpointReader(worker).read()
    mine = {k: v for k, v in whole.items() if k.startswith(f"test.reader-{run}".encode())}
    assert mine == {k: v for k, v in again.items() if k.startswith(f"test.reader-{run}".encode())}
    assert mine == {a: b"a2", c: b"c1"}
