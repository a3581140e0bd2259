"""`zerocarbon sink` against the real Kafka, InfluxDB and Mosquitto: refused points are
dead-lettered with InfluxDB's message, the good ones around them are written, and the newest
window of each series is retained on MQTT; a sink whose loop dies exits non-zero and its
status file says why."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from paho.mqtt.enums import CallbackAPIVersion

from config.kafka_access import KafkaAccess
from config.settings import Settings
from schemas.catalogue import DEAD_LETTER_TOPIC, INDICATOR_TOPIC
from schemas.indicator import IndicatorUpdate, series_key
from schemas.kafka_principals import SINK as SINK_PRINCIPAL
from schemas.kafka_principals import KafkaAcl, sink_acls
from schemas.mqtt_principals import MqttLogin
from sinks.influx_readback import StoredIndicator, read_indicator
from sinks.influx_target import InfluxTarget
from sinks.mqtt_retained import retained_topic
from streams.kafka_admin import start_group_at_end
from tests.kafka_grants import grant, withdraw
from tests.mqtt_tls import secure
from zerocarbon.processes import spawn_command, stop_child

HOUR = datetime(2026, 1, 15, 9, tzinfo=UTC)


def update(indicator: str, value: float, start: datetime = HOUR, revision: int = 0) -> IndicatorUpdate:
    return IndicatorUpdate(
        indicator=indicator, unit="kWh", window="1h", window_start=start,
        window_end=start + timedelta(hours=1), dimensions={"commune": "17300"}, value=value,
        final=True, revision=revision, updated_at=datetime.now(UTC),
    )  # fmt: skip


async def publish(kafka: KafkaAccess, updates: list[IndicatorUpdate]) -> None:
    producer = AIOKafkaProducer(**kafka.client_options(), acks="all")
    await producer.start()
    try:
        for u in updates:
            await producer.send_and_wait(
                INDICATOR_TOPIC, u.model_dump_json(by_alias=True).encode(), key=series_key(u)
            )
    finally:
        await producer.stop()


def write_raw_line(target: InfluxTarget, line: str) -> None:
    query = f"org={target.org}&bucket={target.bucket}&precision=s"
    url = f"{target.url}/api/v2/write?{query}"
    request = urllib.request.Request(
        url, data=line.encode(), headers={"Authorization": f"Token {target.token}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 204


async def read_when_stored(
    target: InfluxTarget, indicator: str, times: list[datetime], timeout: float = 30.0
) -> list[StoredIndicator]:
    """The points of ``indicator`` (1h, commune 17300) once a point is stored at each of
    ``times``, or what is stored when ``timeout`` ends (the caller's assertion says what lacks).

    A dead letter only says the refused point's write is over: a neighbour on another
    partition comes in another batch, written by another request, possibly later."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        stored = read_indicator(
            target, indicator, "1h", {"commune": "17300"}, min(times), max(times) + timedelta(hours=1)
        )
        if {p.time for p in stored} >= set(times) or loop.time() > deadline:
            return stored
        await asyncio.sleep(0.2)


def sink_command(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "zerocarbon.cli", "sink", *args], capture_output=True, text=True, timeout=120
    )


# First in the module: the status file is named after the sink ("influx-sink"), and the
# module's `sink` fixture, once started by a later test, rewrites it every second.
async def test_a_sink_whose_loop_dies_exits_non_zero_and_its_status_says_failing(
    settings: Settings, kafka_admin: KafkaAccess, tmp_path: Path
) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    (spool / "000000000001.lp").write_bytes(b"indicators\tm,window=1h value=1 1\n\xff\xfe broken\n")
    group = f"zc-test-sink-dies-{uuid.uuid4().hex[:8]}"
    await start_group_at_end(kafka_admin, group, [INDICATOR_TOPIC])
    await grant(settings, SINK_PRINCIPAL, sink_acls(group))
    log = tmp_path / "sink.log"
    proc = spawn_command(["sink"], log, {"ZC_SINK_SPOOL_DIR": str(spool), "ZC_SINK_GROUP": group})
    try:
        code = await asyncio.to_thread(proc.wait, 120)  # its write task dies on the unreadable segment
    finally:
        stop_child(proc)
        # Only the group: sink_acls also names the topics, which the service's own grant holds.
        await withdraw(settings, SINK_PRINCIPAL, (KafkaAcl("group", group, "read"),))
    assert code != 0, log.read_text()[-3000:]
    status = json.loads((settings.stack_home / "sink" / "influx-sink.status.json").read_text())
    assert status["pid"] == proc.pid
    assert status["failed"] is not None and "UnicodeDecodeError" in status["failed"]
    assert status["kafka_ready"] is False
    assert "the sink loop died" in log.read_text()
    assert sink_command("--status").returncode != 0


async def test_a_point_influxdb_refuses_is_dead_lettered_and_its_neighbours_written(
    kafka_admin: KafkaAccess, influx_target: InfluxTarget, influx_write_target: InfluxTarget, sink: Path
) -> None:
    run = uuid.uuid4().hex[:8]
    conflicting, fine = f"zc_test_conflict_{run}", f"zc_test_fine_{run}"
    # The measurement's `value` field already exists as a string: InfluxDB refuses a float.
    write_raw_line(
        influx_write_target, f'{conflicting},window=1h,commune=17300 value="text" {int(HOUR.timestamp())}'
    )
    dead = AIOKafkaConsumer(DEAD_LETTER_TOPIC, **kafka_admin.client_options())
    await dead.start()
    try:
        await dead.seek_to_end()
        await publish(
            kafka_admin,
            [update(fine, 1.5), update(conflicting, 2.0), update(fine, 2.5, HOUR + timedelta(hours=1))],
        )
        letter = None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        while letter is None and loop.time() < deadline:
            for records in (await dead.getmany(timeout_ms=500)).values():
                for record in records:
                    candidate = json.loads(record.value or b"{}")
                    if candidate.get("stage") == "sink" and conflicting in candidate.get("payload", ""):
                        letter = candidate
    finally:
        await dead.stop()
    assert letter is not None, "no dead letter for the refused point"
    assert letter["family"] == "indicators"
    assert letter["errors"][0]["type"] == "influxdb_422"  # InfluxDB 2.7: type conflict = 422
    assert "conflict" in letter["reason"]  # InfluxDB's own words: field type conflict
    stored = await read_when_stored(influx_target, fine, [HOUR, HOUR + timedelta(hours=1)])
    assert [(p.time, p.value) for p in stored] == [(HOUR, 1.5), (HOUR + timedelta(hours=1), 2.5)]


async def test_the_newest_window_of_a_series_is_retained_on_mqtt(
    settings: Settings, kafka_admin: KafkaAccess, sink: Path, reader_login: MqttLogin, sink_login: MqttLogin
) -> None:
    indicator = f"zc_test_retained_{uuid.uuid4().hex[:8]}"
    newest = update(indicator, 7.0, HOUR + timedelta(hours=1))
    # The late correction of the older window comes last: it must not replace the newest.
    await publish(kafka_admin, [update(indicator, 5.0), newest, update(indicator, 6.0, HOUR, revision=1)])
    topic = retained_topic(settings.sink_mqtt_topic_root, newest)
    received: list[dict[str, object]] = []
    got = threading.Event()

    def on_message(_c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        if message.retain:
            received.append(json.loads(message.payload))
            got.set()

    expected_start = newest.model_dump(mode="json")["window_start"]
    deadline = asyncio.get_running_loop().time() + 30
    while True:
        # Subscribe afresh until the newest window is retained (the older window's updates
        # sit on another partition and may be published first), then once more after a pause:
        # the late correction read afterwards must not have replaced it.
        got.clear()
        client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        client.username_pw_set(reader_login.username, reader_login.password)  # a city screen
        client.on_message = on_message
        secure(client, settings)
        client.connect(settings.mqtt_host, settings.mqtt_port)
        client.subscribe(topic, qos=1)
        client.loop_start()
        await asyncio.to_thread(got.wait, 2)
        client.disconnect()
        client.loop_stop()
        if asyncio.get_running_loop().time() > deadline:
            break
        if received and received[-1]["window_start"] == expected_start:
            if len([r for r in received if r["window_start"] == expected_start]) >= 2:
                break
            await asyncio.sleep(2)
    assert received, f"nothing retained on {topic}"
    assert received[-1]["window_start"] == expected_start
    assert received[-1]["value"] == 7.0
    # Clear the retained message (as the sink, who alone may publish there): tests leave no
    # trace for the city screens.
    cleaner = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    cleaner.username_pw_set(sink_login.username, sink_login.password)
    secure(cleaner, settings)
    cleaner.connect(settings.mqtt_host, settings.mqtt_port)
    cleaner.loop_start()
    cleaner.publish(topic, b"", qos=1, retain=True).wait_for_publish(10)
    cleaner.disconnect()
    cleaner.loop_stop()


async def test_a_second_sink_on_the_deployment_s_group_refuses_to_start_and_says_why(
    settings: Settings, sink: Path, tmp_path: Path
) -> None:
    """Before, nothing stopped it: two sinks split zc.indicators, and each rebalance let one
    write older values over the other's newer ones (sinks/one_sink.py)."""
    second = await asyncio.to_thread(sink_command)
    assert second.returncode == 1, second.stderr[-3000:]
    assert f"another sink reads consumer group {settings.sink_group!r}" in second.stderr
    assert "one sink per deployment" in second.stderr
    assert "sink ready" not in second.stderr  # it never read zc.indicators
