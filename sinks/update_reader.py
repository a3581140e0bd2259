"""The sink's reading of ``zc.indicators``: Kafka records in, line-protocol points out, and
every record accounted for (a point, a tombstone, or a dead letter naming why).

The fast path is the line batcher (Rust when built, sinks/line_batchers.py), which takes
records in order until one it leaves to Python: a tombstone, a shape the formatter does not
know, or JSON the model refuses. The model decides those, as it always did; what it refuses
is dead-lettered, never skipped. Only the newest window of each retained MQTT topic is
validated again for MQTT (a batch holds many windows of each series).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaProducer, TopicPartition
from pydantic import ValidationError
from pydantic_core import from_json

from schemas.catalogue import DEAD_LETTER_TOPIC
from schemas.dead_letter import FieldProblem, Origin
from schemas.dead_letters import dead_letter, problems_from
from schemas.indicator import IndicatorUpdate
from sinks.influx_buckets import bucket_for_window
from sinks.influx_target import InfluxTarget
from sinks.line_batchers import PythonLineBatcher, line_batcher
from sinks.line_protocol import IndicatorLine, IndicatorLineFormatter, indicator_line
from sinks.mqtt_retained import retained_topic
from sinks.sink_config import SinkConfig
from sinks.write_latency import WriteLatency

STAGE = "sink"
# A bucket name and a line, in memory and in spool segments: bucket names hold no tab.
SEPARATOR = "\t"


@dataclass
class SinkCounters:
    records: int = 0
    tombstones: int = 0
    points_in: int = 0
    points_written: int = 0
    write_requests: int = 0
    retries: int = 0
    rejected: int = 0
    unreadable: int = 0
    last_error: str | None = None
    latency: WriteLatency = field(default_factory=WriteLatency)


def bucketed(point: IndicatorLine, target: InfluxTarget) -> IndicatorLine:
    """The point with its bucket in front of key and line (how the buffer keeps both)."""
    bucket = bucket_for_window(point.window, target)
    return IndicatorLine(bucket + SEPARATOR + point.key, bucket + SEPARATOR + point.line, point.window)


async def send_dead_letter(
    producer: AIOKafkaProducer, raw: bytes, problems: list[FieldProblem], origin: Origin
) -> None:
    """A sink's dead letter, in Kafka when this returns."""
    letter = dead_letter(
        family="indicators", stage=STAGE, raw=raw, problems=problems, origin=origin, now=datetime.now(UTC)
    )
    await producer.send_and_wait(
        DEAD_LETTER_TOPIC, letter.model_dump_json(by_alias=True).encode(), key=b"indicators"
    )


class UpdateReader:
    """Records of one partition to points (bucket-keyed, see ``bucketed``), counted in ``counters``."""

    def __init__(self, config: SinkConfig, counters: SinkCounters) -> None:
        self.config, self.counters = config, counters

        def head(window: str) -> str:  # the bucket in front of each key and line
            return bucket_for_window(window, config.influx) + SEPARATOR

        self._formatter = IndicatorLineFormatter(head)
        self._batcher = line_batcher(head, self._formatter)
        self.lines_by = "python" if isinstance(self._batcher, PythonLineBatcher) else "rust"

    async def read(
        self, tp: TopicPartition, records: list[Any], producer: AIOKafkaProducer
    ) -> tuple[dict[str, str], dict[str, IndicatorUpdate]]:
        """The points of a partition's records (key -> line, the newest of each point) and,
        when the sink publishes retained MQTT, the newest update per MQTT topic."""
        points: dict[str, str] = {}
        values = [record.value for record in records]
        keys: list[str | None] = []  # each record's point, None: none (tombstone, dead letter)
        count = len(values)
        c = self.counters
        c.records += count
        index = 0
        # The batcher takes records in order until one it leaves to this loop, decided here.
        while (index := self._batcher.into(values, index, points, keys)) < count:
            keys.append(await self._one_point(tp, records[index], points, producer))
            index += 1
        c.points_in += count - keys.count(None)
        if not self.config.mqtt_retained:
            return points, {}
        # Series -> (window start, record) of its newest window: only those are validated
        # and published.
        retained: dict[str, tuple[int, bytes]] = {}
        for key, raw in zip(keys, values, strict=True):
            if key is None or raw is None:
                continue
            series, _, start = key.rpartition(" ")  # a point's key ends with its time
            seconds = int(start)
            newest = retained.get(series)
            if newest is None or newest[0] <= seconds:
                retained[series] = (seconds, raw)
        return points, self._newest_per_topic(raw for _, raw in retained.values())

    async def _one_point(
        self, tp: TopicPartition, record: Any, points: dict[str, str], producer: AIOKafkaProducer
    ) -> str | None:
        """The point of a record the batcher left: its key once in ``points``; None for a
        tombstone or a record the model refuses (then in the dead letters)."""
        raw = record.value
        if raw is None:  # a tombstone: compaction housekeeping, nothing to write
            self.counters.tombstones += 1
            return None
        try:  # the Python formatter takes what the Rust one leaves to it (an escaped string...)
            key = self._formatter.into(from_json(raw), points)
        except ValueError:  # not JSON: the model says why, for the dead letter
            key = None
        if key is not None:
            return key
        # Not the shape our indicator stage writes: the model decides, as it always did.
        point = await self._validated_line(tp, record, producer)
        if point is None:
            return None
        points[point.key] = point.line
        return point.key

    async def _validated_line(
        self, tp: TopicPartition, record: Any, producer: AIOKafkaProducer
    ) -> IndicatorLine | None:
        """The point of a record through the model; a record it refuses goes to the dead letters."""
        try:
            update = IndicatorUpdate.model_validate_json(record.value)
        except ValidationError as exc:
            self.counters.unreadable += 1
            origin = Origin(transport="kafka", topic=tp.topic, partition=tp.partition, offset=record.offset)
            await send_dead_letter(producer, record.value, problems_from(exc), origin)
            return None
        return bucketed(indicator_line(update), self.config.influx)

    def _newest_per_topic(self, records: Iterable[bytes]) -> dict[str, IndicatorUpdate]:
        """The newest window of each retained topic among ``records`` (valid updates, in order)."""
        latest: dict[str, IndicatorUpdate] = {}
        for raw in records:
            update = IndicatorUpdate.model_validate_json(raw)
            topic = retained_topic(self.config.mqtt_topic_root, update)
            if topic not in latest or latest[topic].window_start <= update.window_start:
                latest[topic] = update
        return latest
