"""Golden figures through the real stack: raw events -> validation -> indicators on Kafka.

Input (the registry's golden-tests meter, residential electricity in Aytré, factor 0.0520
kgCO2e/kWh), sent in this order on a random past hour H. Windows close on each partition's
event time: this meter is alone on its partition, and the test's worker starts with empty
state, so the watermark is this test's alone.

    a  ends H:05   1000 Wh   -> 15 min window [H:00, H:15)
    b  ends H:20   2000 Wh   -> [H:15, H:30)
    c  = a again (same event id)            -> duplicate, dropped
    d  ends H:40    500 Wh   -> [H:30, H:45); watermark now H:40
    e  ends H:10    300 Wh   -> late: [H:00, H:15) closed at H:15 + 5 min grace,
                                and is corrected (final, its revision + 1 if it
                                was published before e came)
    f  ends H:44    250 Wh   -> out of order but within grace: [H:30, H:45)
    g  ends H+1:30  100 Wh   -> moves the watermark past every window above

Expected, by hand:
    [H:00, H:15) = 1.0 + 0.3 = 1.3 kWh, final     [H:15, H:30) = 2.0 kWh, final
    [H:30, H:45) = 0.5 + 0.25 = 0.75 kWh, final
    hour H       = 1.0 + 2.0 + 0.5 + 0.3 + 0.25 = 4.05 kWh, final
    emissions of hour H = 4.05 x 0.0520 = 0.2106 kgCO2e
"""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from config.kafka_access import KafkaAccess
from config.settings import Settings
from schemas.catalogue import raw_topic, valid_topic
from sinks.influx_readback import StoredIndicator, read_indicator
from sinks.influx_target import InfluxTarget
from tests.integration.golden_meters import RESIDENTIAL, indicator_offsets
from tests.integration.kafka_reading import dead_letters_holding

METER = RESIDENTIAL.meter_id
SERIES = RESIDENTIAL.series


def _reading(event_id: str, end: datetime, wh: float) -> bytes:
    return json.dumps(
        {
            "event_id": event_id,
            "producer_id": "golden-tests",
            "event_time": end.isoformat(),
            "meter_id": METER,
            "commune": "17028",
            "sector": "residential",
            "carrier": "electricity",
            "quantity": wh,
            "unit": "Wh",
            "kind": "interval",
            "interval_start": (end - timedelta(minutes=5)).isoformat(),
        }
    ).encode()


async def _latest_updates(
    kafka: KafkaAccess, offsets: dict[TopicPartition, int], hour: datetime, wanted: int, timeout: float
) -> dict[tuple[str, str, int], Any]:
    """The last update of each (indicator, window, start) of SERIES within ``hour``, published
    after ``offsets`` (taken when the test started)."""
    consumer = AIOKafkaConsumer(**kafka.client_options())
    await consumer.start()
    consumer.assign(list(offsets))
    for tp, offset in offsets.items():
        consumer.seek(tp, offset)
    latest: dict[tuple[str, str, int], Any] = {}
    lo, hi = hour.timestamp(), (hour + timedelta(hours=1)).timestamp()
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                for record in records:
                    update = json.loads(record.value or b"{}")
                    start = datetime.fromisoformat(update["window_start"]).timestamp()
                    if (
                        update["dimensions"] == SERIES
                        and lo <= start < hi
                        and update["window"] in ("15m", "1h")
                    ):
                        latest[(update["indicator"], update["window"], int(start))] = update
            finals = [u for u in latest.values() if u["final"] and u["indicator"] == "energy_consumed_kwh"]
            if len(finals) >= wanted:
                break
    finally:
        await consumer.stop()
    return latest


async def test_golden_figures_with_duplicates_late_and_out_of_order_readings(
    settings: Settings,
    kafka_admin: KafkaAccess,
    influx_target: InfluxTarget,
    fresh_partition: None,
    worker: Path,
    sink: Path,
) -> None:
    rng = random.Random()
    offsets = await indicator_offsets(kafka_admin, settings)
    day = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(
        days=rng.randint(30, 360)
    )
    hour = day + timedelta(hours=rng.randint(0, 22))
    run = uuid.uuid4().hex[:8]
    at = lambda minutes: hour + timedelta(minutes=minutes)  # noqa: E731
    sequence = [
        (f"{run}-a", at(5), 1000),
        (f"{run}-b", at(20), 2000),
        (f"{run}-a", at(5), 1000),  # c: a resent
        (f"{run}-d", at(40), 500),
        (f"{run}-e", at(10), 300),
        (f"{run}-f", at(44), 250),
        (f"{run}-g", at(90), 100),
    ]
    producer = AIOKafkaProducer(**kafka_admin.client_options(), acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for event_id, end, wh in sequence:
            await producer.send_and_wait(raw_topic("energy"), _reading(event_id, end, wh), key=b"17028")
    finally:
        await producer.stop()

    latest = await _latest_updates(kafka_admin, offsets, hour, wanted=4, timeout=90)
    h = int(hour.timestamp())

    def value(indicator: str, window: str, start: int) -> tuple[float, bool]:
        update = latest[(indicator, window, start)]
        return round(update["value"], 6), update["final"]

    assert value("energy_consumed_kwh", "15m", h) == (1.3, True)
    assert value("energy_consumed_kwh", "15m", h + 900) == (2.0, True)
    assert value("energy_consumed_kwh", "15m", h + 1800) == (0.75, True)
    assert value("energy_consumed_kwh", "1h", h) == (4.05, True)
    assert value("emissions_kgco2e", "1h", h) == (0.2106, True)

    # The same figures, as operators read them: from InfluxDB, written by `zerocarbon sink`.
    stored: list[StoredIndicator] = []
    for _ in range(60):
        stored = read_indicator(
            influx_target, "energy_consumed_kwh", "1h", SERIES, hour, hour + timedelta(hours=1)
        )
        if stored and stored[0].final:
            break
        await asyncio.sleep(0.5)
    assert [(s.time, round(s.value, 6), s.final) for s in stored] == [(hour, 4.05, True)]


async def test_a_valid_record_replayed_after_a_crash_counts_once(
    settings: Settings, kafka_admin: KafkaAccess, fresh_partition: None, worker: Path
) -> None:
    """A validation worker that crashes after producing replays its raw records: the valid
    records come again with the same source offset, and must not be counted twice."""
    from schemas.energy import EnergyReading
    from streams.validation.engine import SOURCE_OFFSET_HEADER, SOURCE_PARTITION_HEADER, VALID_ARRAY
    from zerocarbon.demo import worker_counters

    rng = random.Random()
    offsets = await indicator_offsets(kafka_admin, settings)
    # Yesterday: later than the golden test's hour, so the partition's watermark leaves these
    # windows open (an earlier hour would only count in the day, through corrections).
    day = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)
    hour = day + timedelta(hours=rng.randint(0, 20))
    run = uuid.uuid4().hex[:8]
    events = [
        EnergyReading.model_validate_json(_reading(f"{run}-{k}", hour + timedelta(minutes=5 + 5 * k), 1000))
        for k in range(3)
    ]
    closer = EnergyReading.model_validate_json(_reading(f"{run}-z", hour + timedelta(hours=2), 1))
    # Far above any raw offset of this run's stack, so that both copies are judged on it alone.
    source = str(10**12 + rng.randint(0, 10**9)).encode()
    partition = RESIDENTIAL.partition(settings)
    # As if from raw partition 3 (validation re-routes a record to its commune's partition).
    origin = [(SOURCE_PARTITION_HEADER, b"3"), (SOURCE_OFFSET_HEADER, source)]
    before = worker_counters(settings)["indicators"]
    producer = AIOKafkaProducer(**kafka_admin.client_options(), acks="all")
    await producer.start()
    try:
        record = VALID_ARRAY["energy"].dump_json(events, by_alias=True)
        for _ in range(2):  # the original and its replay
            await producer.send_and_wait(
                valid_topic("energy"), record, key=b"17028", partition=partition, headers=origin,
            )  # fmt: skip
        later = str(int(source) + 1).encode()
        await producer.send_and_wait(
            valid_topic("energy"), VALID_ARRAY["energy"].dump_json([closer], by_alias=True),
            key=b"17028", partition=partition,
            headers=[(SOURCE_PARTITION_HEADER, b"3"), (SOURCE_OFFSET_HEADER, later)],
        )  # fmt: skip
    finally:
        await producer.stop()
    # Final: [H:00, H:15), [H:15, H:30) and the hour.
    latest = await _latest_updates(kafka_admin, offsets, hour, wanted=3, timeout=60)
    h = int(hour.timestamp())
    update = latest[("energy_consumed_kwh", "1h", h)]
    assert (round(update["value"], 6), update["final"]) == (3.0, True)  # 3 x 1 kWh, not 6
    after = worker_counters(settings)["indicators"]
    # Skipped whole by its source offset, before any event-id lookup: its three events never
    # reach the duplicate check. (The worker may be replaying other partitions meanwhile, so
    # the skip counter can grow by more than one.)
    assert after.get("replayed_records_skipped", 0) >= before.get("replayed_records_skipped", 0) + 1
    assert after.get("duplicate", 0) == before.get("duplicate", 0)


async def _indicator_value(
    kafka: KafkaAccess, offsets: dict[TopicPartition, int], indicator: str, window: str, start: datetime,
    expected: float, timeout: float,
) -> float | None:  # fmt: skip
    """The value of the latest update of (indicator, window, start) of SERIES once it is
    ``expected``, or the last one seen (None if none) after ``timeout``."""
    consumer = AIOKafkaConsumer(**kafka.client_options())
    await consumer.start()
    consumer.assign(list(offsets))
    for tp, offset in offsets.items():
        consumer.seek(tp, offset)
    seen: float | None = None
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline and seen != expected:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for record in records:
                    update = json.loads(record.value or b"{}")
                    if (
                        update["dimensions"] == SERIES
                        and (update["indicator"], update["window"]) == (indicator, window)
                        and datetime.fromisoformat(update["window_start"]) == start
                    ):
                        seen = round(update["value"], 6)
    finally:
        await consumer.stop()
    return seen


async def test_an_unreadable_valid_record_is_dead_lettered_and_the_next_one_still_counts(
    settings: Settings, kafka_admin: KafkaAccess, fresh_partition: None, worker: Path
) -> None:
    """Issue 19: a record on zc.valid.energy the indicator stage cannot read was acknowledged and
    lost. It goes to zc.deadletter verbatim, with its origin and reason, is counted, and the
    records after it on its partition are still counted."""
    from schemas.energy import EnergyReading
    from streams.validation.engine import VALID_ARRAY
    from zerocarbon.demo import worker_counters

    run = uuid.uuid4().hex[:8]
    # The last hour: after every event time the module's earlier tests sent to this partition,
    # so the window is still open and its running value is published at the next flush.
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    garbage = f"not an array of readings {run} \x00".encode()
    readings = [_reading(f"{run}-{k}", hour + timedelta(minutes=10 + 5 * k), 1000) for k in range(2)]
    valid = VALID_ARRAY["energy"].dump_json(
        [EnergyReading.model_validate_json(r) for r in readings], by_alias=True
    )
    partition = RESIDENTIAL.partition(settings)
    offsets = await indicator_offsets(kafka_admin, settings)
    before = worker_counters(settings)["indicators"]
    producer = AIOKafkaProducer(**kafka_admin.client_options(), acks="all")
    await producer.start()
    try:
        sent = await producer.send_and_wait(valid_topic("energy"), garbage, key=b"17028", partition=partition)
        # After it on its partition: a record as validation writes them (without the source
        # headers, which only matter to a replay).
        await producer.send_and_wait(valid_topic("energy"), valid, key=b"17028", partition=partition)
    finally:
        await producer.stop()

    (letter,) = await dead_letters_holding(kafka_admin, run.encode(), timeout=60)
    assert letter["family"] == "energy" and letter["stage"] == "indicators"
    assert letter["reason"].startswith("Invalid JSON"), letter["reason"]
    assert letter["payload"].encode() == garbage and letter["payload_size"] == len(garbage)
    assert letter["origin"] == {
        "transport": "kafka", "topic": valid_topic("energy"), "partition": partition,
        "offset": sent.offset, "key": "17028", "index": None,
    }  # fmt: skip

    # The two readings after it: 2 x 1 kWh in the hour, whose running value the flush publishes.
    assert (
        await _indicator_value(kafka_admin, offsets, "energy_consumed_kwh", "1h", hour, 2.0, timeout=60)
        == 2.0
    )
    after = worker_counters(settings)["indicators"]
    assert after.get("unreadable_records", 0) - before.get("unreadable_records", 0) == 1
    assert after.get("dead_letters_not_sent", 0) == before.get("dead_letters_not_sent", 0)
