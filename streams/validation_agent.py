"""The validation agent: raw topics in, typed topics and the dead-letter topic out.

Every message ends in exactly one place: its family's valid topic, the dead-letter topic
(with every reason), or the duplicate count. Nothing raises out of the agent, because
faust would skip the message.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import faust

from reference.loader import ReferenceStore
from schemas.catalogue import DEAD_LETTER_TOPIC, raw_topic, valid_topic
from schemas.dead_letter import DeadLetter, FieldProblem, Origin
from schemas.families import FAMILIES
from streams.dead_letters import dead_letter
from streams.deduplication import RecentEventIds
from streams.validation import STAGE, Accepted, Outcome, ValidationCounters, validate_payload
from zerocarbon.settings import Settings

log = logging.getLogger(__name__)


def _raw_topic(app: faust.App, name: str, settings: Settings) -> faust.TopicT:
    return app.topic(
        name,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=settings.kafka_partitions,
    )


def register_validation_agent(
    app: faust.App, settings: Settings, store: ReferenceStore, counters: ValidationCounters
) -> None:
    """Attach the validation agent to ``app``; ``counters`` are updated for every message."""
    source = app.topic(
        *[raw_topic(name) for name in FAMILIES],
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
    )
    valid = {name: _raw_topic(app, valid_topic(name), settings) for name in FAMILIES}
    dead = _raw_topic(app, DEAD_LETTER_TOPIC, settings)
    recent = RecentEventIds(horizon=settings.dedup_horizon_seconds)
    family_of = {raw_topic(name): family for name, family in FAMILIES.items()}

    @app.agent(source)
    async def validate_raw_events(stream: faust.StreamT[bytes]) -> AsyncIterator[None]:
        async for event in stream.events():
            message = event.message
            family = family_of[message.topic]
            raw = bytes(event.value or b"")
            # model_construct: no validation needed for values Kafka gave us; this runs per event.
            origin = Origin.model_construct(
                transport="kafka",
                topic=message.topic,
                partition=message.partition,
                offset=message.offset,
                key=message.key.decode(errors="replace") if message.key else None,
            )
            now = datetime.now(UTC)
            outcome: Outcome
            try:
                outcome = validate_payload(
                    family, raw, origin, store.current(), now, recent, time.monotonic()
                )
            except Exception as exc:  # a bug of ours must still leave the message somewhere
                log.exception("validation failed unexpectedly at %s", origin)
                problem = FieldProblem(path="", type="internal_error", message=repr(exc))
                outcome = dead_letter(
                    family=family.name, stage=STAGE, raw=raw, problems=[problem], origin=origin, now=now
                )
            counters.count(outcome)
            if isinstance(outcome, Accepted):
                device = str(getattr(outcome.event, family.device_field))
                await valid[family.name].send(
                    key=device.encode(), value=outcome.event.model_dump_json(by_alias=True).encode()
                )
            elif isinstance(outcome, DeadLetter):
                await dead.send(
                    key=family.name.encode(), value=outcome.model_dump_json(by_alias=True).encode()
                )
            yield None
