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
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import faust
from pydantic import BaseModel, TypeAdapter

from reference.loader import ReferenceStore
from schemas.catalogue import DEAD_LETTER_TOPIC, raw_topic, valid_topic
from schemas.dead_letter import DeadLetter, FieldProblem
from schemas.energy import EnergyReading
from schemas.environment import EnvironmentReading
from schemas.families import FAMILIES, Family
from schemas.mobility import MobilityEvent
from schemas.partition_key import commune_partition
from streams.dead_letters import dead_letter
from streams.deduplication import RecentEventIds
from streams.raw_records import RawRecord, Unpacked, unpack
from streams.validation import STAGE, Accepted, Outcome, ValidationCounters, validate_payload
from zerocarbon.settings import Settings

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
    family: Family,
    record: RawRecord,
    store: ReferenceStore,
    recent: RecentEventIds,
    counters: ValidationCounters,
) -> tuple[list[BaseModel], list[DeadLetter]]:
    """Validate every payload of one raw record; count each outcome."""
    now = datetime.now(UTC)
    ref = store.current()
    accepted: list[BaseModel] = []
    dead: list[DeadLetter] = []
    for item in unpack(record):
        outcome = _validate_item(family, item, ref, now, recent)
        counters.count(outcome)
        if isinstance(outcome, Accepted):
            accepted.append(outcome.event)
        elif isinstance(outcome, DeadLetter):
            dead.append(outcome)
    return accepted, dead


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


def register_validation_agent(
    app: faust.App, settings: Settings, store: ReferenceStore, counters: ValidationCounters
) -> None:
    """Attach the validation agent to ``app``; ``counters`` are updated for every reading."""
    source = bytes_topic(app, *[raw_topic(name) for name in FAMILIES])
    valid = {
        name: bytes_topic(app, valid_topic(name), partitions=settings.kafka_partitions) for name in FAMILIES
    }
    dead_topic = bytes_topic(app, DEAD_LETTER_TOPIC)
    recent = RecentEventIds(horizon=settings.dedup_horizon_seconds)
    family_of = {raw_topic(name): family for name, family in FAMILIES.items()}

    @app.agent(source)
    async def validate_raw_events(stream: faust.StreamT[bytes]) -> AsyncIterator[None]:
        async for event in stream.events():
            message = event.message
            family = family_of[message.topic]
            record = RawRecord(
                topic=message.topic,
                partition=message.partition,
                offset=message.offset,
                key=message.key,
                value=bytes(event.value or b""),
                headers=list(message.headers or []),
            )
            accepted, dead = validate_record(family, record, store, recent, counters)
            # The raw partition and offset: on each valid partition, the offsets coming from
            # one raw partition grow monotonically, so downstream skips a record it has
            # already counted (a replay after a crash).
            source = {
                SOURCE_OFFSET_HEADER: str(message.offset).encode(),
                SOURCE_PARTITION_HEADER: str(message.partition).encode(),
            }
            for partition, events in by_commune_partition(accepted, settings.kafka_partitions).items():
                await valid[family.name].send(
                    key=events[0].commune.encode(),  # type: ignore[attr-defined]
                    value=VALID_ARRAY[family.name].dump_json(events, by_alias=True),
                    partition=partition,
                    headers=source,
                )
            for letter in dead:
                await dead_topic.send(
                    key=family.name.encode(), value=letter.model_dump_json(by_alias=True).encode()
                )
            yield None
