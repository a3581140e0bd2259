"""The smoke agent: readings from Kafka, written one point each to InfluxDB."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import faust
from pydantic import ValidationError

from schemas.smoke_reading import SmokeReading
from sinks.influx_line_writer import InfluxLineWriter, write_until_taken
from sinks.influx_points import smoke_point
from zerocarbon.settings import Settings

log = logging.getLogger(__name__)


def register_smoke_agent(app: faust.App, settings: Settings) -> None:
    """Attach the smoke agent to ``app``; invalid payloads are logged with their offset."""
    topic = app.topic(
        settings.smoke_kafka_topic,
        key_type=bytes,
        value_type=bytes,
        value_serializer="raw",
        partitions=settings.kafka_partitions,
    )

    @app.agent(topic)
    async def write_smoke_readings(stream: faust.StreamT[bytes]) -> AsyncIterator[None]:
        async with InfluxLineWriter(settings, precision="ms") as writer:
            async for event in stream.events():
                # faust skips a message whose handler raises: catch everything ourselves.
                try:
                    reading = SmokeReading.model_validate_json(event.value)
                except ValidationError as exc:
                    log.warning(
                        "invalid smoke reading at %s[%s]@%s: %s",
                        event.message.topic, event.message.partition, event.message.offset,
                        exc.errors(include_url=False),
                    )  # fmt: skip
                    continue
                line = smoke_point(settings.smoke_measurement, reading).to_line_protocol()
                for refused in await write_until_taken(writer, settings.influx_bucket, [line]):
                    log.error(
                        "InfluxDB refused a smoke point (%s %s): %s", refused.status, refused.message, line
                    )
                yield None
