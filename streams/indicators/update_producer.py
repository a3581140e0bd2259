"""The indicator updates' own Kafka producer: a flush hands thousands of updates at once.

Through faust's ``topic.send`` an update cost about 300 µs to hand over (its per-message
futures, callbacks and sensors), so a flush after a backlog (39 000 updates) held the loop for
12 s and the last flush of a stop could not finish in its 5 s (issue 19). aiokafka's producer
takes the same records, keyed the same way (its default partitioner is faust's), for a
fraction of that, and a flush's updates go as batches of one partition each (``create_batch``,
``send_batch``) rather than one ``send`` each. Idempotent, acks from every replica, batches
kept until delivered (config/patient_producer.py): a retry never writes an update twice.

Each record's partition is the one aiokafka's default partitioner gives its key (murmur2, as
Kafka's Java clients), looked up in a cache: the partitioner is pure Python, 11 µs a key, a
tenth of the worker's CPU in the soak (py-spy), and a flush sends the same window keys again
at each flush while they are open.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError, KafkaTimeoutError
from aiokafka.partitioner import murmur2

from config.kafka_access import KafkaAccess
from config.patient_producer import patient_producer, stop_within

KeyValue = tuple[bytes, bytes]
RETRY_SECONDS = 1.0
PARTITIONS_REMEMBERED = 200_000
"""Keys whose partition is remembered (a few MB), forgotten all at once beyond."""
STOP_SECONDS = 2.0
"""A stop's wait for updates still undelivered (its producer never expires them)."""
log = logging.getLogger(__name__)


def retriable(error: BaseException) -> bool:
    """Kafka away or busy: the same records may go through later (aiokafka's own timeout, not
    marked retriable, is Kafka being away too)."""
    if isinstance(error, KafkaTimeoutError):
        return True
    return isinstance(error, KafkaError) and bool(getattr(error, "retriable", False))


class UpdateProducer:
    """Sends a flush's updates to ``topic`` and returns once Kafka has every one of them."""

    def __init__(self, kafka: KafkaAccess, topic: str) -> None:
        self.kafka, self.topic = kafka, topic
        self._producer: AIOKafkaProducer | None = None
        self._partitions: list[int] = []
        self._partition_of: dict[bytes, int] = {}

    async def deliver(self, records: Sequence[KeyValue]) -> None:
        """Send ``records`` and return once Kafka has them all. While Kafka is away (a retriable
        error) what it does not have is sent again, every ``RETRY_SECONDS``: a flush waits for
        Kafka rather than lose its updates (an update sent twice only rewrites the same value).
        Any other error (no right to write the topic...) is raised."""
        pending = list(records)
        retries = 0
        while pending:
            try:
                producer = await self._started()
                partition = self._partitioner(sorted(await producer.partitions_for(self.topic)))
                sent = await self._send_batches(producer, pending, partition)
                results = await asyncio.gather(*(delivered for _, delivered in sent), return_exceptions=True)
                failed = [
                    (chunk, r)
                    for (chunk, _), r in zip(sent, results, strict=True)
                    if isinstance(r, Exception)
                ]
            except KafkaError as exc:
                if not retriable(exc):
                    raise
                failed = [(pending, exc)]
            for _, error in failed:
                if not retriable(error):
                    raise error
            pending = [record for chunk, _ in failed for record in chunk]
            if pending:
                if retries % 30 == 0:
                    log.warning(
                        "%d indicator updates wait for Kafka (%r); sending again", len(pending), failed[0][1]
                    )
                retries += 1
                await asyncio.sleep(RETRY_SECONDS)

    async def _send_batches(
        self, producer: AIOKafkaProducer, records: list[KeyValue], partition: Callable[[bytes], int]
    ) -> list[tuple[list[KeyValue], asyncio.Future[object]]]:
        """Hand ``records`` to Kafka as batches of one partition each; each batch's records with
        what completes once Kafka has it. One ``send`` per record cost a future, a metadata
        check and a partition check each: with thousands of updates per flush, about a sixth of
        the worker's CPU in a backfill soak (py-spy)."""
        by_partition: dict[int, list[KeyValue]] = {}
        for record in records:
            by_partition.setdefault(partition(record[0]), []).append(record)
        sent: list[tuple[list[KeyValue], asyncio.Future[object]]] = []
        for number, chunk in by_partition.items():
            first, batch = 0, producer.create_batch()
            for i, (key, value) in enumerate(chunk):
                if batch.append(key=key, value=value, timestamp=None) is None:  # full: an empty one takes any
                    sent.append(
                        (chunk[first:i], await producer.send_batch(batch, self.topic, partition=number))
                    )
                    first, batch = i, producer.create_batch()
                    batch.append(key=key, value=value, timestamp=None)
            sent.append((chunk[first:], await producer.send_batch(batch, self.topic, partition=number)))
        return sent

    def _partitioner(self, partitions: list[int]) -> Callable[[bytes], int]:
        """The partition of a key, as aiokafka's ``DefaultPartitioner`` chooses it, remembered."""
        if partitions != self._partitions or len(self._partition_of) > PARTITIONS_REMEMBERED:
            self._partitions, self._partition_of = partitions, {}
        remembered, count = self._partition_of, len(partitions)

        def partition(key: bytes) -> int:
            found = remembered.get(key)
            if found is None:
                found = remembered[key] = partitions[(murmur2(key) & 0x7FFFFFFF) % count]
            return found

        return partition

    async def stop(self) -> None:
        if self._producer is not None:
            producer, self._producer = self._producer, None
            # Whatever it still holds after a last flush that timed out is in no checkpoint:
            # the next start computes those updates again.
            await stop_within(producer, STOP_SECONDS)

    async def _started(self) -> AIOKafkaProducer:
        if self._producer is None:
            producer = patient_producer(
                **self.kafka.client_options(),
                linger_ms=5,
                max_batch_size=512 * 1024,
            )
            await producer.start()
            self._producer = producer
        return self._producer
