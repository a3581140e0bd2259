"""The bridge's Kafka producer, replaced whole when its sequence numbers fall out of step.

The producer is idempotent: the broker numbers each partition's batches and refuses one out of
order. When the broker refuses a batch for what it is (a 10 MiB reading, bridge/kafka_refusals.py),
aiokafka has already counted it, and every later batch of that partition is refused as out of
order, forever: the bridge stalled on the first reading near Mosquitto's limit (issue 19, found
by tests/faults/test_hostile_payloads.py). Only a new producer (a new producer id, numbers
from 0) sends there again: ``renew`` starts one in place of the old.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

from aiokafka import AIOKafkaProducer

from config.patient_producer import stop_within

log = logging.getLogger(__name__)

Record = tuple[str, int | None, bytes | None, bytes, list[tuple[str, bytes]]]
"""A Kafka record to send: topic, partition (None: the producer's choice), key, value, headers."""

STOP_SECONDS = 5.0
"""What a stop waits for batches still undelivered (the producer never expires them: Kafka away,
it would wait for its return); the readings in them are not acknowledged to Mosquitto."""


class RenewableProducer:
    """An ``AIOKafkaProducer`` made by ``make``, which ``renew`` replaces."""

    def __init__(self, make: Callable[[], AIOKafkaProducer]) -> None:
        self._make = make
        self._producer = make()
        self.renewals = 0

    async def start(self) -> None:
        await self._producer.start()

    async def stop(self) -> None:
        await stop_within(self._producer, STOP_SECONDS)

    async def partitions_for(self, topic: str) -> set[int]:
        partitions: set[int] = await self._producer.partitions_for(topic)
        return partitions

    async def send(
        self,
        topic: str,
        value: bytes,
        *,
        key: bytes | None,
        partition: int | None,
        headers: Sequence[tuple[str, bytes]],
    ) -> asyncio.Future[object]:
        """As ``AIOKafkaProducer.send``: the future of the broker's answer."""
        future: asyncio.Future[object] = await self._producer.send(
            topic, value, key=key, partition=partition, headers=list(headers)
        )
        return future

    async def renew(self, error: BaseException) -> None:
        """Stop the current producer and start a new one; what was not confirmed is the caller's
        to send again."""
        log.warning("Kafka producer out of step with the broker (%r): starting a new one", error)
        old, self._producer = self._producer, self._make()
        try:
            await stop_within(old, STOP_SECONDS)
        except Exception as exc:  # its sender may have died of the very error
            log.info("the replaced producer stopped with %r", exc)
        await self._producer.start()
        self.renewals += 1

    async def send_all(self, records: list[Record]) -> list[BaseException | None]:
        """Each record's outcome: None once confirmed, else the error (raised at once, as for a
        record larger than the producer allows, or when the broker answers)."""
        outcomes: list[asyncio.Future[object] | BaseException] = []
        for topic, part, key, value, headers in records:
            try:
                outcomes.append(await self.send(topic, value, key=key, partition=part, headers=headers))
            except Exception as exc:  # refused before sending: an outcome like the others
                outcomes.append(exc)
        results: list[BaseException | None] = []
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                results.append(outcome)
                continue
            try:
                await outcome
                results.append(None)
            except Exception as exc:  # the broker's answer for this record
                results.append(exc)
        return results
