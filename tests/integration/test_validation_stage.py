"""The validation stage on the real broker: every raw event ends up accepted, dead-lettered or
counted as a duplicate, and the counts balance (received = accepted + dead-lettered + duplicates).
"""

from __future__ import annotations

import asyncio
import base64
import json
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from config.kafka_access import KafkaAccess
from config.settings import Settings
from schemas.catalogue import DEAD_LETTER_TOPIC, raw_topic, valid_topic
from tests.energy_readings import energy_reading
from zerocarbon.component_configs import worker_url


def _air(producer: str, event_id: str, now: datetime, value: float) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "producer_id": producer,
        "event_time": now.isoformat(),
        "sensor_id": "aq-17300-0001",
        "commune": "17300",
        "quantity": "no2",
        "value": value,
        "unit": "ug/m3",
    }


async def _produce(kafka: KafkaAccess, records: list[tuple[str, bytes]], key: bytes = b"test-device") -> None:
    producer = AIOKafkaProducer(**kafka.client_options(), acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for topic, value in records:
            await producer.send(topic, value, key=key)
        await producer.flush()
    finally:
        await producer.stop()


async def _collect(
    kafka: KafkaAccess, topics: list[str], marker: str, expected: int, timeout: float
) -> list[bytes]:
    consumer = AIOKafkaConsumer(*topics, **kafka.client_options(), auto_offset_reset="earliest")
    await consumer.start()
    found: list[bytes] = []
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline and len(found) < expected:
            batches = await consumer.getmany(timeout_ms=500)
            found += [
                m.value for ms in batches.values() for m in ms if m.value and marker.encode() in m.value
            ]
    finally:
        await consumer.stop()
    return found


def _counters(settings: Settings) -> dict[str, Any]:
    with urllib.request.urlopen(f"{worker_url(settings)}/counters", timeout=5) as r:
        counters: dict[str, Any] = json.loads(r.read())
    return counters


def _added(before: dict[str, Any], after: dict[str, Any]) -> dict[str, dict[str, int]]:
    """What each outcome's counters gained per key between two reads of /counters."""
    return {
        outcome: {
            key: count - before[outcome].get(key, 0)
            for key, count in after[outcome].items()
            if count != before[outcome].get(key, 0)
        }
        for outcome in ("accepted", "duplicates", "dead_lettered")
    }


async def _counted(settings: Settings, before: dict[str, Any], readings: int) -> dict[str, Any]:
    """/counters once ``readings`` more readings than ``before`` are counted (a reading is
    counted just after its records are sent, so just after a consumer may see them)."""
    after = _counters(settings)
    for _ in range(50):
        if after["received"] - before["received"] >= readings:
            break
        await asyncio.sleep(0.2)
        after = _counters(settings)
    return after


async def test_every_raw_event_is_accounted_for(
    settings: Settings, kafka_admin: KafkaAccess, worker: Path
) -> None:
    run = uuid.uuid4().hex[:8]
    producer = f"test-{run}"  # a producer id the registry does not name
    before = _counters(settings)
    now = datetime.now(UTC)
    valid = [
        (raw_topic("energy"), json.dumps(energy_reading(producer, f"{run}-e{k}", now)).encode())
        for k in range(20)
    ] + [
        (raw_topic("environment"), json.dumps(_air(producer, f"{run}-a{k}", now, 20 + k)).encode())
        for k in range(10)
    ]
    duplicates = valid[:5]
    invalid = [
        (raw_topic("energy"), json.dumps(energy_reading(producer, f"{run}-neg", now, quantity=-1)).encode()),
        (
            raw_topic("energy"),
            json.dumps(energy_reading(producer, f"{run}-far", now, commune="75056")).encode(),
        ),
        (raw_topic("environment"), json.dumps(_air(producer, f"{run}-abs", now, 99999)).encode()),
        (raw_topic("mobility"), f'{{"producer_id": "{producer}", "broken": '.encode()),
        (raw_topic("energy"), b'\xff{"producer_id": "' + producer.encode() + b'"}'),
    ]
    await _produce(kafka_admin, valid + duplicates + invalid)

    # Each raw record here holds one event, so each valid record (a JSON array) holds one.
    valid_records = await _collect(
        kafka_admin,
        [valid_topic("energy"), valid_topic("environment")],
        producer,
        30,
        timeout=60,
    )
    accepted = [event for record in valid_records for event in json.loads(record)]
    dead = await _collect(kafka_admin, [DEAD_LETTER_TOPIC], producer, 5, timeout=30)
    assert len(accepted) == 30
    assert len({event["event_id"] for event in accepted}) == 30
    records = [json.loads(v) for v in dead]
    assert len(records) == 5
    binary = next(r for r in records if r["payload_encoding"] == "base64")
    assert base64.b64decode(binary["payload"]) == invalid[-1][1]
    reasons = sorted(r["reason"] for r in records)
    assert any(r.startswith("quantity:") for r in reasons)
    assert any(r.startswith("commune:") for r in reasons)
    assert any(r.startswith("value:") for r in reasons)
    assert any("Invalid JSON" in r for r in reasons)
    assert all(r["origin"]["transport"] == "kafka" and r["origin"]["offset"] is not None for r in records)

    # Each letter keeps the producer id it read (evidence); the counters never take it as a key.
    assert all(r["producer_id"] == producer for r in records)
    counters = await _counted(settings, before, 40)
    assert counters["received"] - before["received"] == 40
    # Accepted readings and duplicates count under their device's producer in the registry
    # (elec-17300-0001: enedis, aq-17300-0001: atmo-na), the dead letters under `unregistered`.
    assert _added(before, counters) == {
        "accepted": {"enedis": 20, "atmo-na": 10},
        "duplicates": {"enedis": 5},
        "dead_lettered": {"unregistered": 5},
    }
    assert all(producer not in counters[outcome] for outcome in ("accepted", "duplicates", "dead_lettered"))
    assert counters["balanced"] is True


async def test_a_deeply_nested_array_is_dead_lettered_and_the_agent_goes_on(
    settings: Settings, kafka_admin: KafkaAccess, worker: Path
) -> None:
    """Issue 19: `json.loads` raised RecursionError on it, faust restarted the agent and the
    record was gone, neither dead-lettered nor counted."""
    run = uuid.uuid4().hex[:8]
    producer = f"test-{run}"
    now = datetime.now(UTC)
    nested = b"[" * 100_000 + b"]" * 100_000

    def valid(k: int) -> tuple[str, bytes]:
        return raw_topic("energy"), json.dumps(energy_reading(producer, f"{run}-e{k}", now)).encode()

    before = _counters(settings)
    # One key, so one partition: the valid events after the nested array are handled after it.
    records = [valid(0), valid(1), (raw_topic("energy"), nested), valid(2), valid(3), valid(4)]
    await _produce(kafka_admin, records, key=producer.encode())

    valid_records = await _collect(kafka_admin, [valid_topic("energy")], producer, 5, timeout=60)
    accepted = [event for record in valid_records for event in json.loads(record)]
    assert sorted(event["event_id"] for event in accepted) == [f"{run}-e{k}" for k in range(5)]
    # The nested array names no producer: its dead letter is found by its Kafka key (its origin).
    dead = await _collect(kafka_admin, [DEAD_LETTER_TOPIC], producer, 1, timeout=30)
    (letter,) = [json.loads(v) for v in dead]
    assert letter["family"] == "energy" and letter["stage"] == "validation"
    assert "recursion limit exceeded" in letter["reason"], letter["reason"]
    assert letter["payload"].encode() == nested and letter["payload_size"] == len(nested)
    assert letter["origin"]["transport"] == "kafka" and letter["origin"]["key"] == producer
    assert letter["origin"]["topic"] == raw_topic("energy") and letter["origin"]["offset"] is not None

    after = await _counted(settings, before, 6)
    assert after["received"] - before["received"] == 6
    assert _added(before, after)["accepted"] == {"enedis": 5}  # the meter's producer in the registry
    assert after["dead_lettered"].get("unknown", 0) - before["dead_lettered"].get("unknown", 0) == 1
    assert after["reasons"].get("json_invalid", 0) - before["reasons"].get("json_invalid", 0) == 1
    assert after["balanced"] is True


def test_worker_serves_counters_but_no_raw_tables(settings: Settings, worker: Path) -> None:
    base = worker_url(settings)
    assert "received" in _counters(settings)
    for path in ("/table/", "/router/", "/stats/", "/graph/"):
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(base + path, timeout=5)
        assert refused.value.code == 404, path
