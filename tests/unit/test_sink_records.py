"""What the sink does with each Kafka record, without a broker: the fast path for our own
updates, the model (and its dead letter, reason unchanged) for everything else."""

from __future__ import annotations

import asyncio
import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord
from pydantic import SecretStr

from config.settings import Settings
from schemas.catalogue import DEAD_LETTER_TOPIC
from schemas.indicator import IndicatorUpdate
from sinks.indicator_sink import IndicatorSink
from sinks.line_protocol import indicator_line
from sinks.mqtt_retained import retained_topic
from sinks.sink_config import SinkConfig
from sinks.update_reader import SEPARATOR, bucketed
from zerocarbon.component_configs import sink_config

TP = TopicPartition("zc.indicators", 2)
START = datetime(2026, 3, 1, 10, tzinfo=UTC)


class Producer:
    """Stands in for AIOKafkaProducer: keeps what would be sent."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []

    async def send_and_wait(self, topic: str, value: bytes, key: bytes | None = None) -> None:
        self.sent.append((topic, json.loads(value)))


def update(window: str = "1h", value: float = 2.5, commune: str = "17300") -> IndicatorUpdate:
    return IndicatorUpdate(
        indicator="energy_consumed_kwh", unit="kWh", window=window, window_start=START,
        window_end=START.replace(hour=11), dimensions={"commune": commune}, value=value,
        updated_at=START,
    )  # fmt: skip


def record(offset: int, value: bytes | None) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(TP.topic, TP.partition, offset, 0, 0, None, value, None, 0, 0, [])


def configured(tmp_path: Path, retained: bool) -> SinkConfig:
    """The sink's configuration in a stack home of the test's own, with the Kafka password a
    setting gives (no stack generated one there); no Kafka is reached."""
    settings = Settings(
        stack_home=tmp_path, sink_mqtt_retained=retained, kafka_sink_password=SecretStr("unit-sink-password")
    )
    return sink_config(settings)


def take(tmp_path: Path, values: list[bytes | None]) -> tuple[IndicatorSink, Producer]:
    config = configured(tmp_path, retained=False)
    sink, producer = IndicatorSink(config, name="unit-sink"), Producer()
    records = [record(100 + i, v) for i, v in enumerate(values)]
    asyncio.run(sink._take(TP, records, producer))  # type: ignore[arg-type]
    sink._admit()  # into the buffer, as the loop does after a read
    return sink, producer


def test_our_updates_become_their_lines_in_their_buckets(tmp_path: Path) -> None:
    updates = [update("1h"), update("1m", commune="17000"), update("1h", value=3.0)]
    sink, producer = take(tmp_path, [u.model_dump_json(by_alias=True).encode() for u in updates])
    expected = [bucketed(indicator_line(u), sink.config.influx) for u in updates]
    # The third replaces the first (same point); the 1m window goes to the minute bucket.
    assert sink.buffer.memory == {p.key: p.line for p in expected}
    assert len(sink.buffer.memory) == 2
    assert any(k.startswith(sink.config.influx.minute_bucket + SEPARATOR) for k in sink.buffer.memory)
    assert sink.buffer.consumed == {(TP.topic, TP.partition): 103}
    assert producer.sent == [] and sink.counters.points_in == 3


def test_other_shapes_the_model_accepts_are_written_the_same(tmp_path: Path) -> None:
    lax = json.loads(update().model_dump_json(by_alias=True))
    del lax["revision"], lax["final"], lax["schema"]  # defaults: valid, but not our stage's shape
    sink, producer = take(tmp_path, [json.dumps(lax).encode()])
    point = bucketed(indicator_line(update()), sink.config.influx)
    assert sink.buffer.memory == {point.key: point.line}
    assert producer.sent == []


def test_what_the_model_refuses_is_dead_lettered_with_its_reason(tmp_path: Path) -> None:
    bad_value = json.loads(update().model_dump_json(by_alias=True)) | {"value": "lots"}
    naive = json.loads(update().model_dump_json(by_alias=True)) | {"window_start": "2026-03-01T10:00:00"}
    sink, producer = take(
        tmp_path, [b"not json", json.dumps(bad_value).encode(), None, json.dumps(naive).encode()]
    )
    assert sink.buffer.memory == {}
    assert sink.buffer.consumed == {(TP.topic, TP.partition): 104}  # refused records are read past
    assert [topic for topic, _ in producer.sent] == [DEAD_LETTER_TOPIC] * 3
    letters = [letter for _, letter in producer.sent]
    assert [letter["stage"] for letter in letters] == ["sink"] * 3
    assert [letter["origin"]["offset"] for letter in letters] == [100, 101, 103]
    assert letters[0]["reason"].startswith("Invalid JSON")
    assert letters[1]["reason"].startswith("value: ")
    assert letters[2]["reason"].startswith("window_start: ")
    assert letters[1]["payload"] == json.dumps(bad_value)  # kept verbatim
    assert sink.counters.unreadable == 3 and sink.counters.tombstones == 1 and sink.counters.records == 4


def test_records_between_refused_ones_keep_their_order_and_the_sink_goes_on(tmp_path: Path) -> None:
    # An instant UTC cannot hold (one minute before year 1): astimezone's OverflowError used to
    # escape the model and stop the sink. Between the refused records, two revisions of a point.
    before_year_one = json.loads(update().model_dump_json(by_alias=True)) | {
        "window_start": "0001-01-01T00:00:00+00:01"
    }
    escaped = json.loads(update(value=4.0).model_dump_json(by_alias=True)) | {"unit": 'k"Wh'}
    values = [
        update(value=1.0).model_dump_json(by_alias=True).encode(),
        json.dumps(before_year_one).encode(),
        json.dumps(escaped).encode(),  # an escaped string: the Python formatter's, not Rust's
        None,
        update(value=5.0).model_dump_json(by_alias=True).encode(),
    ]
    sink, producer = take(tmp_path, values)
    newest = bucketed(indicator_line(update(value=5.0)), sink.config.influx)
    assert sink.buffer.memory == {newest.key: newest.line}  # the last revision wins, in order
    assert [letter["reason"] for _, letter in producer.sent] == [
        "window_start: Value error, 0001-01-01T00:00:00+00:01 is out of the datetime range"
        " once converted to UTC"
    ]
    assert sink.counters.points_in == 3 and sink.counters.tombstones == 1


def test_a_record_only_the_model_may_judge_is_dead_lettered_with_retained_mqtt_on(tmp_path: Path) -> None:
    # 4 301 digits: serde_json reads them, jiter does not; the Rust batcher taking the record
    # made the retained-MQTT step raise the model's ValidationError out of the sink's loop.
    huge_version = (
        update()
        .model_dump_json(by_alias=True)
        .replace('"schema_version":1', '"schema_version":' + "9" * 4301)
    )
    config = configured(tmp_path, retained=True)
    sink, producer = IndicatorSink(config, name="unit-sink"), Producer()
    latest = asyncio.run(sink._take(TP, [record(100, huge_version.encode())], producer))  # type: ignore[arg-type]
    assert latest == {} and sink.buffer.memory == {}
    assert [letter["reason"][:30] for _, letter in producer.sent] == ["Invalid JSON: number out of ra"]
    assert sink.counters.unreadable == 1 and sink.counters.records == 1


def test_retained_mqtt_gets_the_newest_window_of_each_series_as_the_model_reads_it(tmp_path: Path) -> None:
    # Only the newest window of each series is validated for MQTT: the same choice as reading
    # every record through the model (a later record wins a tie).
    rng = random.Random(3)
    updates = [
        IndicatorUpdate(
            indicator=indicator,
            unit="kWh",
            window=window,
            window_start=START + timedelta(hours=h),
            window_end=START + timedelta(hours=h + 1),
            dimensions={"commune": commune},
            value=float(rng.randrange(100)),
            updated_at=START,
        )
        for indicator in ("energy_consumed_kwh", "emissions_kgco2e")
        for window in ("1h", "1d")
        for commune in ("17300", "17000", "17028")
        for h in range(5)
        for _ in range(2)
    ]
    rng.shuffle(updates)
    raws = [u.model_dump_json(by_alias=True).encode() for u in updates]
    sink = IndicatorSink(configured(tmp_path, retained=True), name="unit-sink")
    records = [record(100 + i, raw) for i, raw in enumerate(raws)]
    offered = asyncio.run(sink._take(TP, records, Producer()))  # type: ignore[arg-type]
    by_model: dict[str, IndicatorUpdate] = {}
    for u in updates:
        topic = retained_topic(sink.config.mqtt_topic_root, u)
        if topic not in by_model or by_model[topic].window_start <= u.window_start:
            by_model[topic] = u
    assert offered == by_model and len(offered) == 12
