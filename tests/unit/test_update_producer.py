"""A flush waits for an absent Kafka instead of losing its updates, and gives up on an error
no retry fixes (the worker then stops: streams/worker_health.py)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError, TopicAuthorizationFailedError
from aiokafka.partitioner import DefaultPartitioner

from config.kafka_access import KafkaAccess
from streams.indicators import update_producer
from streams.indicators.update_producer import UpdateProducer


class Batch:
    """aiokafka's ``BatchBuilder`` as the producer uses it: full after ``capacity`` records."""

    def __init__(self, capacity: int) -> None:
        self.capacity, self.records = capacity, list[tuple[bytes, bytes]]()

    def append(self, *, key: bytes, value: bytes, timestamp: float | None) -> object | None:
        if len(self.records) >= self.capacity:
            return None
        self.records.append((key, value))
        return object()


class FlakyKafka:
    """Fails the first ``failing`` batches with ``error``, then keeps what it is sent."""

    def __init__(self, failing: int, error: Exception, capacity: int = 1000) -> None:
        self.failing, self.error, self.capacity = failing, error, capacity
        self.kept: list[tuple[bytes, bytes]] = []
        self.partition_of: dict[bytes, int] = {}
        self.batches = 0

    async def partitions_for(self, topic: str) -> set[int]:
        return {3, 0, 2, 1}

    def create_batch(self) -> Batch:
        return Batch(self.capacity)

    async def send_batch(self, batch: Batch, topic: str, partition: int) -> asyncio.Future[None]:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.batches += 1
        if self.failing > 0:
            self.failing -= 1
            done.set_exception(self.error)
        else:
            self.kept += batch.records
            self.partition_of.update((key, partition) for key, _ in batch.records)
            done.set_result(None)
        return done


class OnFlakyKafka(UpdateProducer):
    def __init__(self, kafka: FlakyKafka) -> None:
        super().__init__(KafkaAccess(bootstrap="127.0.0.1:1"), "zc.indicators")
        self.kafka_double = kafka

    async def _started(self) -> AIOKafkaProducer:
        producer: Any = self.kafka_double
        return producer


RECORDS = [(f"k{i}".encode(), f"v{i}".encode()) for i in range(5)]


@pytest.mark.parametrize("error", [KafkaConnectionError("away"), KafkaTimeoutError()])
async def test_updates_kafka_does_not_take_are_sent_again_until_it_has_them_all(
    error: Exception, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(update_producer, "RETRY_SECONDS", 0.0)
    kafka = FlakyKafka(failing=6, error=error, capacity=2)
    await OnFlakyKafka(kafka).deliver(RECORDS)
    assert sorted(kafka.kept) == sorted(RECORDS)  # every batch refused at first, some again


async def test_an_error_no_retry_fixes_is_raised() -> None:
    kafka = FlakyKafka(failing=1, error=TopicAuthorizationFailedError())
    with pytest.raises(TopicAuthorizationFailedError):
        await OnFlakyKafka(kafka).deliver(RECORDS)


async def test_each_update_goes_to_the_partition_aiokafka_s_default_partitioner_gives_its_key() -> None:
    """The partitions are computed, and remembered, by the producer (aiokafka's partitioner,
    pure Python, cost a tenth of the worker's CPU): a key must land where it always did, or
    compaction would keep two values of a window in two partitions."""
    kafka = FlakyKafka(failing=0, error=KafkaTimeoutError())
    producer = OnFlakyKafka(kafka)
    keys = [f"energy_consumed_kwh|commune=17300|1h|{1764892800 + 3600 * i}".encode() for i in range(200)]
    await producer.deliver([(key, b"{}") for key in keys])
    await producer.deliver([(key, b"{}") for key in keys])  # from what it remembers
    assert kafka.partition_of == {key: DefaultPartitioner()(key, [0, 1, 2, 3], [0, 1, 2, 3]) for key in keys}
    assert len(set(kafka.partition_of.values())) == 4


async def test_updates_beyond_a_batch_go_in_the_next_one_of_their_partition_none_lost() -> None:
    kafka = FlakyKafka(failing=0, error=KafkaTimeoutError(), capacity=7)
    records = [(f"key-{i}".encode(), f"value-{i}".encode()) for i in range(200)]
    await OnFlakyKafka(kafka).deliver(records)
    assert sorted(kafka.kept) == sorted(records) and len(kafka.kept) == len(records)
    assert kafka.batches >= 200 // 7
    per_partition: dict[int, list[bytes]] = {}
    for key, _ in kafka.kept:
        per_partition.setdefault(kafka.partition_of[key], []).append(key)
    order = {key: i for i, (key, _) in enumerate(records)}
    for keys in per_partition.values():  # a partition's updates in the order of the flush
        assert keys == sorted(keys, key=order.__getitem__)
