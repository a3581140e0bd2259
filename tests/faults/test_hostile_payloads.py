"""Hostile payloads mixed with a simulated territory's traffic (issue 19), over MQTT as the
gateway and straight onto a raw Kafka topic as a partner could: empty, binary, truncated,
nested ten thousand levels deep, numbers no float holds, the wrong encodings, payloads near
Mosquitto's 10 MiB limit. Each must be dead-lettered once, verbatim, for its own reason, and
the valid traffic around them must reconcile as if they had not been there.

The payload of 10 MiB less a few bytes passes Mosquitto (``message_size_limit``, the payload
alone) but not Kafka once framed by the bridge (``message.max.bytes``, the whole batch): the
bridge dead-letters it as ``kafka_refused`` and goes on acknowledging. At 9.9 MiB the record
fits in Kafka, and validation refuses the payload as larger than its 1 MiB bound.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

from aiokafka import AIOKafkaProducer

from config.kafka_access import KafkaAccess
from config.settings import Settings
from schemas.catalogue import raw_topic
from schemas.mqtt_principals import MqttLogin
from stack.stack_config import StackConfig
from tests.faults.territory import ExpectedLetter, Territory
from tests.integration.broker_clients import Client

READINGS = 40_000  # 20 s at 2 000 readings/s, around the hostile payloads
MOSQUITTO_PAYLOAD_LIMIT = 10 * 1024 * 1024  # message_size_limit, stack/mosquitto_broker.py
TOPIC = "zc/17028/energy/golden-17028-0008"  # a registered meter: only the payload is wrong
DEPTH = 100_000


def reading(event_id: str, quantity: str = "1.5") -> bytes:
    """A valid interval reading of the golden meter, ``quantity`` spliced in as JSON text."""
    now = datetime.now(UTC).replace(microsecond=0).isoformat()
    event = {
        "event_id": event_id, "producer_id": "golden-tests", "event_time": now,
        "meter_id": "golden-17028-0008", "commune": "17028", "sector": "residential",
        "carrier": "electricity", "quantity": "QUANTITY", "unit": "kWh", "kind": "interval",
        "interval_start": now,
    }  # fmt: skip
    return json.dumps(event, ensure_ascii=False).replace('"QUANTITY"', quantity).encode()


def hostile(where: str) -> list[ExpectedLetter]:
    """The same kinds of hostile payload for either way in, each with the reason it must get."""
    text = reading(f"hostile-{where}-encoding-é").decode()
    return [
        ExpectedLetter(f"{where}: empty", b"", "validation", "json_invalid"),
        ExpectedLetter(f"{where}: binary", bytes(range(256)) * 4, "validation", "invalid_utf8"),
        ExpectedLetter(
            f"{where}: truncated", reading(f"hostile-{where}-cut")[:70], "validation", "json_invalid"
        ),
        ExpectedLetter(f"{where}: nested arrays", b"[" * DEPTH + b"]" * DEPTH, "validation", "json_invalid"),
        ExpectedLetter(
            f"{where}: nested objects", b'{"a":' * DEPTH + b"1" + b"}" * DEPTH, "validation", "json_invalid"
        ),
        ExpectedLetter(
            f"{where}: 1e400", reading(f"hostile-{where}-float", "1e400"), "validation", "finite_number"
        ),
        ExpectedLetter(
            f"{where}: 10**400", reading(f"hostile-{where}-int", str(10**400)), "validation", "finite_number"
        ),
        ExpectedLetter(f"{where}: UTF-16", text.encode("utf-16"), "validation", "invalid_utf8"),
        ExpectedLetter(f"{where}: latin-1", text.encode("latin-1"), "validation", "invalid_utf8"),
        ExpectedLetter(
            f"{where}: truncated array with a lone surrogate",
            b'[{"event_id": "hostile-\\ud800", "quantity": 1',
            "validation",
            "json_invalid",
        ),
    ]


def near_the_limit() -> list[ExpectedLetter]:
    """MQTT payloads Mosquitto takes and Kafka or validation cannot."""
    big = int(9.9 * 1024 * 1024)
    largest = MOSQUITTO_PAYLOAD_LIMIT - 16  # framed with its topic: above Kafka's 10 MiB
    return [
        ExpectedLetter("mqtt: 9.9 MiB of JSON", _padded(big, b"a"), "validation", "payload_too_large"),
        ExpectedLetter(
            "mqtt: 9.9 MiB of control characters", b"\x01" * big, "validation", "payload_too_large"
        ),
        ExpectedLetter(
            "mqtt: 10 MiB less 16 bytes of JSON", _padded(largest, b"a"), "bridge", "kafka_refused"
        ),
        ExpectedLetter(
            "mqtt: 10 MiB less 16 bytes of control characters", b"\x01" * largest, "bridge", "kafka_refused"
        ),
    ]


def _padded(size: int, filler: bytes) -> bytes:
    head = b'{"event_id": "hostile-huge", "pad": "'
    return head + filler * (size - len(head) - 2) + b'"}'


def publish_over_mqtt(settings: Settings, login: MqttLogin, letters: list[ExpectedLetter]) -> None:
    client = Client(settings, login, client_id="zc-faults-hostile")
    try:
        for letter in letters:
            reason = client.publish(TOPIC, letter.payload)
            assert not reason.is_failure, f"{letter.name}: Mosquitto refused it ({reason})"
    finally:
        client.close()


async def produce_raw(kafka: KafkaAccess, letters: list[ExpectedLetter]) -> None:
    """Straight onto zc.raw.energy, keyed by the commune, as a partner publishes."""
    producer = AIOKafkaProducer(**kafka.client_options(), acks="all", max_request_size=2 << 20)
    await producer.start()
    try:
        for letter in letters:
            await producer.send_and_wait(raw_topic("energy"), letter.payload, key=b"17028")
    finally:
        await producer.stop()


async def test_hostile_payloads_are_dead_lettered_each_for_its_reason_and_the_rest_flows(
    settings: Settings,
    kafka_admin: KafkaAccess,
    gateway_login: MqttLogin,
    stack_config: StackConfig,
    tmp_path: Path,
) -> None:
    over_mqtt = [*hostile("mqtt"), *near_the_limit()]
    over_kafka = hostile("kafka")
    assert json.loads(reading("x"))["quantity"] == 1.5  # the template itself is valid JSON
    async with Territory(settings, kafka_admin, stack_config, tmp_path) as territory:
        load = await territory.start_load(count=READINGS)
        await territory.wait_raw_records(200)
        await asyncio.to_thread(publish_over_mqtt, settings, gateway_login, over_mqtt)
        await produce_raw(kafka_admin, over_kafka)
        assert not load.done, "the load ended before the hostile payloads: raise READINGS"
        report = await load.finished()
        await territory.reconcile(report, [*over_mqtt, *over_kafka])
        assert territory.bridge.running and territory.worker.running
