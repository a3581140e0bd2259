"""The single-node broker supports what the service relies on: idempotence and transactions."""

import uuid
from collections.abc import AsyncIterator

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from config.kafka_access import KafkaAccess
from streams.kafka_admin import create_topic, delete_topics


@pytest.fixture
async def topic(kafka_admin: KafkaAccess) -> AsyncIterator[str]:
    """A topic of one partition of the test's own (the broker creates none by itself), deleted after."""
    name = f"test.guarantees.{uuid.uuid4().hex[:8]}"
    await create_topic(kafka_admin, name, partitions=1)
    yield name
    await delete_topics(kafka_admin, [name])


async def _read_committed(kafka: KafkaAccess, topic: str, expected: int) -> list[bytes]:
    consumer = AIOKafkaConsumer(
        topic,
        **kafka.client_options(),
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        enable_auto_commit=False,
    )
    await consumer.start()
    values: list[bytes] = []
    try:
        for _ in range(20):
            batches = await consumer.getmany(timeout_ms=500)
            values += [m.value for msgs in batches.values() for m in msgs if m.value is not None]
            if len(values) >= expected:
                break
    finally:
        await consumer.stop()
    return values


async def test_committed_transaction_visible_aborted_one_not(kafka_admin: KafkaAccess, topic: str) -> None:
    producer = AIOKafkaProducer(
        **kafka_admin.client_options(), transactional_id=f"test-tx-{uuid.uuid4().hex[:8]}"
    )
    await producer.start()
    try:
        async with producer.transaction():
            await producer.send_and_wait(topic, b"committed-1", partition=0)
            await producer.send_and_wait(topic, b"committed-2", partition=0)
        await producer.begin_transaction()
        await producer.send_and_wait(topic, b"aborted", partition=0)
        await producer.abort_transaction()
        async with producer.transaction():
            await producer.send_and_wait(topic, b"committed-3", partition=0)
    finally:
        await producer.stop()
    values = await _read_committed(kafka_admin, topic, expected=3)
    assert values == [b"committed-1", b"committed-2", b"committed-3"]


async def test_idempotent_producer_with_acks_all(kafka_admin: KafkaAccess, topic: str) -> None:
    producer = AIOKafkaProducer(**kafka_admin.client_options(), enable_idempotence=True, acks="all")
    await producer.start()
    try:
        for k in range(50):
            await producer.send(topic, str(k).encode(), partition=0)
        await producer.flush()
    finally:
        await producer.stop()
    values = await _read_committed(kafka_admin, topic, expected=50)
    assert values == [str(k).encode() for k in range(50)]
