"""The validation agent: raw topics in, typed topics and the dead-letter topic out.

A thin loop around streams/validation/engine.py, which holds the rules of what each raw
record becomes: faust event -> RawRecord -> ``engine.apply`` -> send each record -> count.
Nothing raises out of the loop, because faust would skip the message (HINTS: #189, #315,
#527).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable

import faust
from aiokafka.errors import MessageSizeTooLargeError

from reference.loader import ReferenceStore
from schemas.catalogue import BATCH_FRAMING_BYTES, DEAD_LETTER_TOPIC, raw_topic, topic_max_bytes, valid_topic
from schemas.families import FAMILIES
from streams.app import bytes_topic
from streams.validation.deduplication import RecentEventIds

# Re-exported: the valid topic's contract, imported from here by streams/indicators/,
# bench/ and tests/ (by_commune_partition by bench/energy_workload.py).
from streams.validation.engine import Outgoing, ValidationEngine
from streams.validation.raw_records import RawRecord
from streams.validation.recent_ids_recall import recall_recent_ids
from streams.validation.stage import ValidationCounters
from streams.worker_config import WorkerConfig
from streams.worker_health import WorkerHealth

log = logging.getLogger(__name__)

Send = Callable[[Outgoing], Awaitable[object]]
"""The agent's Kafka producer, one record at a time."""


async def handle_record(engine: ValidationEngine, record: RawRecord, send: Send) -> None:
    """Validate one raw record, send what it becomes and count it; never raises."""
    routed = engine.apply(record)
    try:
        for outgoing in routed.records:
            await send(outgoing)
    except Exception as exc:
        # Refused by the producer (a record too large...): the whole record goes to the
        # dead-letter topic instead and is counted once, as that. What was sent before the
        # failure stays sent; replayed from the dead letter, it counts as duplicates.
        routed = engine.reject_whole(record, exc)
        try:
            for outgoing in routed.records:
                await send(outgoing)
        except Exception:
            log.exception(
                "raw record %s[%d]@%d could not be dead-lettered either: re-read it from the raw topic",
                record.topic, record.partition, record.offset,
            )  # fmt: skip
    engine.count(routed)


def refusing_oversized(send: Send) -> Send:
    """``send``, raising MessageSizeTooLargeError itself for a record its topic would refuse.

    The worker's producer is idempotent (streams/app.py): it numbers a record before the broker
    answers, and a record the broker refused for its size left every later record of that
    partition refused as out of order, for good (the bridge met it:
    tests/unit/test_bridge_producer_renewal.py). Refused here, the record is never numbered,
    and ``handle_record`` dead-letters its raw record whole. A valid record can outgrow its raw
    record: validation writes the events in full.
    """

    async def checked(outgoing: Outgoing) -> object:
        size = len(outgoing.key) + len(outgoing.value) + BATCH_FRAMING_BYTES
        size += sum(len(name) + len(value) for name, value in (outgoing.headers or {}).items())
        limit = topic_max_bytes(outgoing.topic)
        if size > limit:
            raise MessageSizeTooLargeError(
                f"a record of {size - BATCH_FRAMING_BYTES} bytes for {outgoing.topic}, whose limit "
                f"is {limit} bytes less {BATCH_FRAMING_BYTES} of framing"
            )
        return await send(outgoing)

    return checked


async def recall_accepted_ids(config: WorkerConfig, recent: RecentEventIds) -> None:
    """Remember what was accepted within the horizon before this process started
    (recent_ids_recall.py). Without it the worker still works, as it did before: a reading
    resent just after this start may then count twice, which the log says."""
    typed = [valid_topic(name) for name in FAMILIES]
    try:
        recall = await recall_recent_ids(config.kafka, recent, typed)
    except Exception as exc:  # Kafka away, a topic gone...: validation must go on
        log.warning(
            "validation's memory of recent event ids not recalled (%r): a reading resent "
            "now that was accepted before this start counts twice", exc,
        )  # fmt: skip
        return
    log.info(
        "validation remembers %d event ids accepted before this start, within %.0f s (the last %d "
        "typed records, read in %.1f s; %d unreadable)", recall.remembered, config.dedup_horizon_seconds,
        recall.records, recall.seconds, recall.unreadable,
    )  # fmt: skip


def register_validation_agent(
    app: faust.App,
    config: WorkerConfig,
    store: ReferenceStore,
    counters: ValidationCounters,
    health: WorkerHealth,
) -> None:
    """Attach the validation agent to ``app``; ``counters`` are updated for every reading,
    ``health`` learns if its loop dies (streams/worker_health.py)."""
    source = bytes_topic(app, *[raw_topic(name) for name in FAMILIES])
    topics = {
        valid_topic(name): bytes_topic(app, valid_topic(name), partitions=config.partitions)
        for name in FAMILIES
    }
    topics[DEAD_LETTER_TOPIC] = bytes_topic(app, DEAD_LETTER_TOPIC)
    recent = RecentEventIds(horizon=config.dedup_horizon_seconds)
    engine = ValidationEngine(store, recent, counters, config.partitions)

    async def to_kafka(outgoing: Outgoing) -> None:
        await topics[outgoing.topic].send(
            key=outgoing.key, value=outgoing.value, partition=outgoing.partition, headers=outgoing.headers
        )

    send = refusing_oversized(to_kafka)
    recalled: list[bool] = []  # once per process: an agent faust restarts keeps its memory

    @app.agent(source)
    async def validate_raw_events(stream: faust.StreamT[bytes]) -> AsyncIterator[None]:
        if not recalled:
            recalled.append(True)
            await recall_accepted_ids(config, recent)
        try:
            async for event in stream.events():
                message = event.message
                record = RawRecord(
                    topic=message.topic,
                    partition=message.partition,
                    offset=message.offset,
                    key=message.key,
                    value=bytes(event.value or b""),
                    headers=list(message.headers or []),
                )
                await handle_record(engine, record, send)
                yield None
        except Exception as exc:  # a bug: faust would restart the agent past the record
            health.loop_died("validation agent", exc)
            raise
