"""The validation agent: raw topics in, typed topics and the dead-letter topic out.

Every reading ends in exactly one place: its family's valid topic, the dead-letter topic
(with every reason), or the duplicate count. Nothing raises out of the agent, because
faust would skip the message. One raw record (a batch from the bridge, a partner's array
or a single event) gives one valid record per commune partition it holds (one, when the
producer keyed it by commune as documented), a JSON array of the accepted events, so a
device's readings stay in order, a commune's readings meet on one partition
(schemas/partition_key.py), and faust's per-message cost is paid once per batch.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import faust
from pydantic import BaseModel, TypeAdapter

from reference.loader import ReferenceStore
from schemas.catalogue import DEAD_LETTER_TOPIC, raw_topic, valid_topic
from schemas.dead_letter import DeadLetter, FieldProblem
from schemas.dead_letters import dead_letter
from schemas.energy import EnergyReading
from schemas.environment import EnvironmentReading
from schemas.families import FAMILIES, Family
from schemas.mobility import MobilityEvent
from schemas.partition_key import commune_partition
from streams.validation.deduplication import RecentEventIds
from streams.validation.raw_records import RawRecord, Unpacked, record_origin, unpack
from streams.validation.stage import STAGE, Accepted, Outcome, ValidationCounters, validate_payload
from streams.worker_config import WorkerConfig

log = logging.getLogger(__name__)

SOURCE_OFFSET_HEADER = "zc-source-offset"
SOURCE_PARTITION_HEADER = "zc-source-partition"

VALID_ARRAY: dict[str, TypeAdapter[Any]] = {
    "energy": TypeAdapter(list[EnergyReading]),
    "environment": TypeAdapter(list[EnvironmentReading]),
    "mobility": TypeAdapter(list[MobilityEvent]),
}


def bytes_topic(app: faust.App, *names: str, partitions: int | None = None) -> faust.TopicT:
    """A topic (or several) whose keys and values we encode ourselves: faust passes bytes."""
    return app.topic(
        *names,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=partitions,
    )


def validate_record(
    family: Family, record: RawRecord, store: ReferenceStore, recent: RecentEventIds
) -> list[Outcome]:
    """The outcome of every payload of one raw record, in order (counted by the caller)."""
    now = datetime.now(UTC)
    ref = store.current()
    return [_validate_item(family, item, ref, now, recent) for item in unpack(record)]


def _validate_item(
    family: Family, item: Unpacked, ref: Any, now: datetime, recent: RecentEventIds
) -> Outcome:
    try:
        if item.problem is not None:
            problem = FieldProblem(path="", type="malformed_batch", message=item.problem)
            return dead_letter(
                family=family.name,
                stage=STAGE,
                raw=item.payload,
                problems=[problem],
                origin=item.origin,
                now=now,
            )
        return validate_payload(family, item.payload, item.origin, ref, now, recent, time.monotonic())
    except Exception as exc:  # a bug of ours must still leave the reading somewhere
        log.exception("validation failed unexpectedly at %s", item.origin)
        problem = FieldProblem(path="", type="internal_error", message=repr(exc))
        return dead_letter(
            family=family.name, stage=STAGE, raw=item.payload, problems=[problem], origin=item.origin, now=now
        )


def by_commune_partition(events: list[BaseModel], partitions: int) -> dict[int, list[BaseModel]]:
    """Accepted events grouped by the partition of their commune, in arrival order."""
    groups: dict[int, list[BaseModel]] = {}
    for event in events:
        commune: str = event.commune  # type: ignore[attr-defined]
        groups.setdefault(commune_partition(commune, partitions), []).append(event)
    return groups


@dataclass(frozen=True, slots=True)
class RoutedRecord:
    """What one raw record becomes: valid arrays for its family's valid topic (partition, key,
    value), dead letters (value), and the outcomes to count once they are sent."""

    valid: list[tuple[int, bytes, bytes]]
    dead: list[bytes]
    outcomes: list[Outcome]


def route_record(
    family: Family, record: RawRecord, store: ReferenceStore, recent: RecentEventIds, partitions: int
) -> RoutedRecord:
    """Validate one raw record and encode what it becomes; never raises (see record_failure)."""
    try:
        outcomes = validate_record(family, record, store, recent)
        accepted = [outcome.event for outcome in outcomes if isinstance(outcome, Accepted)]
        array = VALID_ARRAY[family.name]
        valid = []
        for partition, events in by_commune_partition(accepted, partitions).items():
            commune: str = events[0].commune  # type: ignore[attr-defined]
            valid.append((partition, commune.encode(), array.dump_json(events, by_alias=True)))
        dead = [
            outcome.model_dump_json(by_alias=True).encode()
            for outcome in outcomes
            if isinstance(outcome, DeadLetter)
        ]
    except Exception as exc:
        return record_failure(family, record, exc)
    return RoutedRecord(valid, dead, outcomes)


def record_failure(family: Family, record: RawRecord, exc: Exception) -> RoutedRecord:
    """The whole record as one dead letter naming ``exc``: a bug of ours (or a record we cannot
    send) must still leave the record somewhere visible, verbatim, and counted once."""
    log.error(
        "raw record %s[%d]@%d dead-lettered whole: %s: %s",
        record.topic, record.partition, record.offset, type(exc).__name__, exc, exc_info=exc,
    )  # fmt: skip
    problem = FieldProblem(
        path="",
        type="internal_error",
        message=f"{type(exc).__name__} while handling the raw record: {exc}"[:1000],
    )
    letter = dead_letter(
        family=family.name,
        stage=STAGE,
        raw=record.value,
        problems=[problem],
        origin=record_origin(record),
        now=datetime.now(UTC),
    )
    return RoutedRecord([], [letter.model_dump_json(by_alias=True).encode()], [letter])


Send = Callable[[str, bytes, bytes, int | None, dict[str, bytes] | None], Awaitable[object]]
"""``send(topic, key, value, partition, headers)``: the agent's Kafka producer."""


async def handle_record(
    family: Family,
    record: RawRecord,
    store: ReferenceStore,
    recent: RecentEventIds,
    counters: ValidationCounters,
    partitions: int,
    send: Send,
) -> None:
    """Validate one raw record, send what it becomes and count it; never raises, because
    faust would skip the message (HINTS: #189, #315, #527)."""
    routed = route_record(family, record, store, recent, partitions)
    # The raw partition and offset: on each valid partition, the offsets coming from one raw
    # partition grow monotonically, so downstream skips a record it has already counted (a
    # replay after a crash).
    source = {
        SOURCE_OFFSET_HEADER: str(record.offset).encode(),
        SOURCE_PARTITION_HEADER: str(record.partition).encode(),
    }
    try:
        await _send_routed(family, routed, source, send)
    except Exception as exc:
        # Refused by the producer (a record too large...): the whole record goes to the
        # dead-letter topic instead and is counted once, as that. What was sent before the
        # failure stays sent; replayed from the dead letter, it counts as duplicates.
        routed = record_failure(family, record, exc)
        try:
            await _send_routed(family, routed, source, send)
        except Exception:
            log.exception(
                "raw record %s[%d]@%d could not be dead-lettered either: re-read it from the raw topic",
                record.topic, record.partition, record.offset,
            )  # fmt: skip
    for outcome in routed.outcomes:
        counters.count(outcome)


async def _send_routed(family: Family, routed: RoutedRecord, source: dict[str, bytes], send: Send) -> None:
    for partition, key, value in routed.valid:
        await send(valid_topic(family.name), key, value, partition, source)
    for value in routed.dead:
        await send(DEAD_LETTER_TOPIC, family.name.encode(), value, None, None)


def register_validation_agent(
    app: faust.App, config: WorkerConfig, store: ReferenceStore, counters: ValidationCounters
) -> None:
    """Attach the validation agent to ``app``; ``counters`` are updated for every reading."""
    source = bytes_topic(app, *[raw_topic(name) for name in FAMILIES])
    topics = {
        valid_topic(name): bytes_topic(app, valid_topic(name), partitions=config.partitions)
        for name in FAMILIES
    }
    topics[DEAD_LETTER_TOPIC] = bytes_topic(app, DEAD_LETTER_TOPIC)
    recent = RecentEventIds(horizon=config.dedup_horizon_seconds)
    family_of = {raw_topic(name): family for name, family in FAMILIES.items()}

    async def send(
        topic: str, key: bytes, value: bytes, partition: int | None, headers: dict[str, bytes] | None
    ) -> None:
        await topics[topic].send(key=key, value=value, partition=partition, headers=headers)

    @app.agent(source)
    async def validate_raw_events(stream: faust.StreamT[bytes]) -> AsyncIterator[None]:
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
            await handle_record(
                family_of[message.topic], record, store, recent, counters, config.partitions, send
            )
            yield None
