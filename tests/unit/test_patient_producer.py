"""The bridge's and the indicator updates' producers keep a batch until the broker has it
(config/patient_producer.py): aiokafka failed one that waited 40 s for a leader, and the caller
sent it again under a new number while the broker may have held it (75 readings twice on the
raw topics with Kafka stopped for 60 s, tests/faults/test_kafka_restart.py)."""

from __future__ import annotations

import asyncio
import time

import pytest
from aiokafka.structs import TopicPartition

from config.patient_producer import patient_producer, stop_within

TP = TopicPartition("zc.raw.energy", 0)


async def test_a_batch_waiting_for_a_leader_never_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    producer = patient_producer(bootstrap_servers="127.0.0.1:1", request_timeout_ms=1000)
    try:
        accumulator = producer._message_accumulator
        await accumulator.add_message(TP, b"key", b"value", timeout=1)
        producer._txn_manager.set_pid_and_epoch(1, 0)  # as the sender does before draining
        (batch,) = accumulator._batches[TP]
        later = time.monotonic() + 30 * 24 * 3600
        monkeypatch.setattr(time, "monotonic", lambda: later)
        assert not batch.expired()
        # The cluster knows no leader: an ordinary producer's batch would be failed here.
        nodes, _ = accumulator.drain_by_nodes(ignore_nodes=set())
        assert nodes == {} and not batch.future.done()
    finally:
        await producer.client.close()


async def test_an_ordinary_producer_s_batch_does_fail_there(monkeypatch: pytest.MonkeyPatch) -> None:
    """The premise: what patient_producer changes is what aiokafka would otherwise do."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(
        bootstrap_servers="127.0.0.1:1", request_timeout_ms=1000, acks="all", enable_idempotence=True
    )
    try:
        accumulator = producer._message_accumulator
        await accumulator.add_message(TP, b"key", b"value", timeout=1)
        producer._txn_manager.set_pid_and_epoch(1, 0)  # as the sender does before draining
        (batch,) = accumulator._batches[TP]
        later = time.monotonic() + 2
        monkeypatch.setattr(time, "monotonic", lambda: later)
        accumulator.drain_by_nodes(ignore_nodes=set())
        assert batch.future.done() and batch.future.exception() is not None
    finally:
        await producer.client.close()


async def test_a_stop_gives_up_on_what_the_broker_never_took() -> None:
    producer = patient_producer(bootstrap_servers="127.0.0.1:1", request_timeout_ms=1000)
    given_up: list[bool] = []

    async def waiting_for_its_batches() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            given_up.append(True)
            raise

    producer.stop = waiting_for_its_batches  # type: ignore[method-assign]
    await stop_within(producer, 0.2)
    assert given_up == [True]
    await producer.client.close()
