"""Idempotent aiokafka producers that keep a batch until the broker has it, however long it is away.

aiokafka 0.14 never expires a batch its sender has sent once when the producer is idempotent
(``_can_retry``), but its accumulator still fails one that waited ``request_timeout_ms`` (40 s)
for a partition with no leader (``MessageAccumulator.drain_by_nodes``). A batch sent just
before the broker went away may already be in the broker's log, its answer lost: failed with
``LeaderNotAvailableError`` and sent again by the caller, it is written a second time under a
new sequence number, and the producer's numbering falls out of step with the broker
(``OutOfOrderSequenceNumber``). tests/faults/test_kafka_restart.py saw it: Kafka stopped for
60 s, 75 readings on the raw topics twice. Kept until delivered, the batch goes again under its
own number once the broker is back, and the broker drops it if it already holds it.

Records never drained keep ``send``'s own timeout (a full batch, no metadata): those fail before
they are numbered, and sending them again is safe. A producer that never gives up cannot be
stopped by waiting for its batches while the broker is away: stop it with ``stop_within``.
"""

from __future__ import annotations

import asyncio
import logging
import math
from typing import Any

from aiokafka import AIOKafkaProducer

log = logging.getLogger(__name__)


def patient_producer(**options: Any) -> AIOKafkaProducer:
    """An idempotent ``AIOKafkaProducer`` (acks from every replica) with ``options``, whose
    batches never expire while they wait for a leader."""
    producer = AIOKafkaProducer(**options, acks="all", enable_idempotence=True)
    accumulator = getattr(producer, "_message_accumulator", None)
    if accumulator is None or not hasattr(accumulator, "_batch_ttl"):
        raise RuntimeError(
            "this aiokafka has no MessageAccumulator._batch_ttl: config/patient_producer.py "
            "must be revisited for it (pyproject.toml pins the version it was written for)"
        )
    accumulator._batch_ttl = math.inf
    return producer


async def stop_within(producer: AIOKafkaProducer, seconds: float) -> None:
    """Stop ``producer``, giving up on what it still holds after ``seconds``: its callers did
    not count those records as delivered, and a process stops whatever Kafka does."""
    try:
        await asyncio.wait_for(producer.stop(), seconds)
    except TimeoutError:
        log.warning(
            "the Kafka producer still held undelivered batches after %.0f s; stopped without them",
            seconds,
        )
