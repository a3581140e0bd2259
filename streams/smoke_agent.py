"""The smoke agent: readings from Kafka, written one point each to InfluxDB.

A payload that is not a smoke reading, and a point InfluxDB refuses, go to the dead-letter
topic (``zc.deadletter``, family and stage ``smoke``) with the payload verbatim, where it
came from and why; the agent goes on with the next reading.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime

import faust
from pydantic import ValidationError

from config.settings import Settings
from schemas.catalogue import DEAD_LETTER_TOPIC
from schemas.dead_letter import DeadLetter, FieldProblem, Origin
from schemas.dead_letters import dead_letter, problems_from
from schemas.smoke_reading import SmokeReading
from sinks.influx_line_writer import InfluxLineWriter, write_until_taken
from sinks.influx_points import smoke_point
from streams.validation.agent import bytes_topic

log = logging.getLogger(__name__)
FAMILY = STAGE = "smoke"


def read_smoke_reading(value: bytes | None, origin: Origin, now: datetime) -> SmokeReading | DeadLetter:
    """The reading ``value`` holds, or its dead letter naming every problem."""
    raw = value or b""
    try:
        return SmokeReading.model_validate_json(raw)
    except ValidationError as exc:
        problems = problems_from(exc)
    return dead_letter(family=FAMILY, stage=STAGE, raw=raw, problems=problems, origin=origin, now=now)


def refused_letter(value: bytes, origin: Origin, status: int, message: str, now: datetime) -> DeadLetter:
    """The dead letter of a reading whose point InfluxDB refused, with InfluxDB's answer."""
    problem = FieldProblem(path="", type=f"influxdb_{status}", message=message)
    return dead_letter(family=FAMILY, stage=STAGE, raw=value, problems=[problem], origin=origin, now=now)


Deliver = Callable[[bytes, bytes], Awaitable[None]]
"""``deliver(key, value)``: send a record to ``zc.deadletter``; returns once Kafka has it."""


async def send_dead_letter(letter: DeadLetter, deliver: Deliver) -> bool:
    """Send ``letter``; returns once Kafka has it (the stream acknowledges the reading after),
    False if it could not be sent. Never raises: faust would skip the message."""
    try:
        await deliver(FAMILY.encode(), letter.model_dump_json(by_alias=True).encode())
    except Exception:
        where = (letter.origin.topic, letter.origin.partition, letter.origin.offset)
        log.exception("smoke reading at %s[%s]@%s not dead-lettered: read it on its topic", *where)
        return False
    return True


def register_smoke_agent(app: faust.App, settings: Settings) -> None:
    """Attach the smoke agent to ``app``; what it cannot write is dead-lettered with its offset."""
    topic = app.topic(
        settings.smoke_kafka_topic,
        key_type=bytes,
        value_type=bytes,
        value_serializer="raw",
        partitions=settings.kafka_partitions,
    )
    dead_topic = bytes_topic(app, DEAD_LETTER_TOPIC)

    async def deliver_dead_letter(key: bytes, value: bytes) -> None:
        await (await dead_topic.send(key=key, value=value))

    @app.agent(topic)
    async def write_smoke_readings(stream: faust.StreamT[bytes]) -> AsyncIterator[None]:
        async with InfluxLineWriter(settings, precision="ms") as writer:
            async for event in stream.events():
                message = event.message
                where = (message.topic, message.partition, message.offset)
                key = message.key.decode(errors="replace") if message.key else None
                origin = Origin(
                    transport="kafka", topic=where[0], partition=where[1], offset=where[2], key=key
                )
                reading = read_smoke_reading(event.value, origin, datetime.now(UTC))
                if isinstance(reading, DeadLetter):
                    log.warning(
                        "invalid smoke reading at %s[%s]@%s, dead-lettered: %s", *where, reading.reason
                    )
                    await send_dead_letter(reading, deliver_dead_letter)
                    yield None
                    continue
                line = smoke_point(settings.smoke_measurement, reading).to_line_protocol()
                for refused in await write_until_taken(writer, settings.influx_bucket, [line]):
                    log.error(
                        "InfluxDB refused a smoke point (%s %s), dead-lettered: %s",
                        refused.status, refused.message, line,
                    )  # fmt: skip
                    letter = refused_letter(
                        event.value or b"", origin, refused.status, refused.message, datetime.now(UTC)
                    )
                    await send_dead_letter(letter, deliver_dead_letter)
                yield None
