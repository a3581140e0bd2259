"""The MQTT-to-Kafka bridge on the real brokers: nothing published and accepted is lost."""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from bridge.mqtt_sessions import forget_session
from bridge.mqtt_to_kafka import BridgeConfig, MqttToKafkaBridge
from config.kafka_access import KafkaAccess
from config.settings import Settings
from schemas.catalogue import DEAD_LETTER_TOPIC, raw_topic
from schemas.device_topics import device_topic
from schemas.kafka_principals import BRIDGE
from schemas.mqtt_principals import MqttLogin
from sensors.qos1_socket_publisher import publish_qos1
from stack.mosquitto_broker import MosquittoBroker
from stack.stack_config import StackConfig
from tests.integration.kafka_reading import dead_letters_holding, read_payloads
from tests.mqtt_tls import secure
from zerocarbon.component_configs import kafka_access, mqtt_ca_file
from zerocarbon.processes import log_size, start_service, stop_child

RAW_TOPICS = [raw_topic(f) for f in ("energy", "environment", "mobility")]


def _start_bridge(log: Path, client_id: str) -> tuple[subprocess.Popen[bytes], int]:
    offset = log_size(log)
    return start_service(["bridge", "--client-id", client_id], log), offset


@pytest.fixture
def bridge_log(tmp_path: Path) -> Path:
    return tmp_path / "bridge.log"


def _reading(run: str, k: int) -> bytes:
    return json.dumps(
        {
            "event_id": f"{run}-{k}",
            "producer_id": f"test-{run}",
            "event_time": datetime.now(UTC).isoformat(),
            "meter_id": "elec-17300-0001",
            "commune": "17300",
            "sector": "residential",
            "carrier": "electricity",
            "quantity": k % 500,
            "unit": "Wh",
            "kind": "interval",
            "interval_start": "2026-01-01T00:00:00Z",
        }
    ).encode()


class Publisher:
    """A device-side paho client on a persistent session that outlives broker restarts."""

    def __init__(self, settings: Settings, client_id: str, login: MqttLogin) -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        self.client.username_pw_set(login.username, login.password)
        self.client.max_queued_messages_set(0)
        self.client.max_inflight_messages_set(1000)
        self.client.reconnect_delay_set(min_delay=1, max_delay=2)
        # PUBACKed message ids. MQTTMessageInfo cannot tell: a message published while the
        # broker was down keeps rc "not connected" though paho queues it and sends it later.
        self.acknowledged: set[int] = set()
        self.client.on_publish = lambda _c, _u, mid, _rc, _p: self.acknowledged.add(mid)
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 3600
        secure(self.client, settings)
        self.client.connect(settings.mqtt_host, settings.mqtt_port, clean_start=False, properties=props)
        self.client.loop_start()

    def publish(self, topic: str, payload: bytes) -> mqtt.MQTTMessageInfo:
        return self.client.publish(topic, payload, qos=1)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _wait_for_status(client_id: str, ready: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """The bridge's status as `zerocarbon bridge --status` prints it, once ``ready`` holds."""
    mine: dict[str, Any] = {}
    for _ in range(20):
        out = subprocess.run(
            [sys.executable, "-m", "zerocarbon.cli", "bridge", "--status"], capture_output=True, text=True
        )
        mine = next((s for s in json.loads(out.stdout) if s["client_id"] == client_id), {})
        if mine and ready(mine):
            break
        time.sleep(0.5)
    return mine


def _wait_for_statuses(
    client_ids: list[str], ready: Callable[[list[dict[str, Any]]], bool]
) -> list[dict[str, Any]]:
    """Several bridges' statuses, read together until ``ready`` holds for them all (10 s)."""
    statuses: list[dict[str, Any]] = []
    for _ in range(20):
        out = subprocess.run(
            [sys.executable, "-m", "zerocarbon.cli", "bridge", "--status"], capture_output=True, text=True
        )
        by_id = {s["client_id"]: s for s in json.loads(out.stdout)}
        statuses = [by_id.get(c, {}) for c in client_ids]
        if all(statuses) and ready(statuses):
            break
        time.sleep(0.5)
    return statuses


def _event_ids(payloads: list[tuple[str, bytes]]) -> list[str]:
    return [json.loads(p)["event_id"] for _, p in payloads]


async def test_every_message_reaches_kafka_through_bridge_kills_and_a_broker_restart(
    settings: Settings,
    kafka_admin: KafkaAccess,
    stack_config: StackConfig,
    bridge_log: Path,
    gateway_login: MqttLogin,
) -> None:
    run = uuid.uuid4().hex[:8]
    total = 20_000
    client_id = f"test-bridge-{run}"
    bridge, _ = _start_bridge(bridge_log, client_id)
    publisher = Publisher(settings, f"test-device-{run}", gateway_login)
    topic = device_topic("17300", "energy", "elec-17300-0001")
    infos: list[mqtt.MQTTMessageInfo] = []
    chaos_done = threading.Event()

    def chaos() -> None:
        nonlocal bridge
        try:
            for _ in range(2):
                time.sleep(1.0)
                bridge.kill()  # SIGKILL: no clean shutdown, unacknowledged messages stay queued
                bridge.wait()
                time.sleep(0.5)
                bridge, _ = _start_bridge(bridge_log, client_id)
            time.sleep(1.0)
            broker = MosquittoBroker(stack_config)
            broker.stop()
            broker.start()
            broker.wait_ready()
        finally:
            chaos_done.set()

    chaos_thread = threading.Thread(target=chaos)
    chaos_thread.start()
    try:
        for k in range(total):
            infos.append(publisher.publish(topic, _reading(run, k)))
            if k % 500 == 0:
                time.sleep(0.2)  # spread the load over the whole chaos (about 8 s)
        chaos_thread.join(timeout=180)
        assert chaos_done.is_set()
        mids = {info.mid for info in infos}
        assert len(mids) == total
        deadline = time.monotonic() + 120
        while not mids <= publisher.acknowledged and time.monotonic() < deadline:
            time.sleep(0.2)
        assert mids <= publisher.acknowledged, f"{len(mids - publisher.acknowledged)} never acknowledged"
        marker = f'"test-{run}"'.encode()
        found = await read_payloads(
            kafka_admin,
            [raw_topic("energy")],
            keep=lambda _t, p: marker in p,
            done=lambda got: len(set(_event_ids(got))) >= total,
            timeout=180,
        )
    finally:
        publisher.close()
        stop_child(bridge)
        forget_session(
            settings.mqtt_host, settings.mqtt_port, client_id, gateway_login, ca_file=mqtt_ca_file(settings)
        )
        forget_session(
            settings.mqtt_host,
            settings.mqtt_port,
            f"test-device-{run}",
            gateway_login,
            ca_file=mqtt_ca_file(settings),
        )
    ids = _event_ids(found)
    unique = set(ids)
    missing = total - len(unique)
    assert missing == 0, f"{missing} of {total} messages never reached Kafka"
    assert unique == {f"{run}-{k}" for k in range(total)}
    print(
        f"{total} published, {len(ids)} records in Kafka, {len(ids) - total} duplicates (removed by event id)"
    )


async def test_any_bytes_are_forwarded_verbatim_and_unrouted_topics_dead_lettered(
    settings: Settings, kafka_admin: KafkaAccess, bridge_log: Path, gateway_login: MqttLogin
) -> None:
    run = uuid.uuid4().hex[:8]
    bridge, _ = _start_bridge(bridge_log, f"test-bridge-{run}")
    rng = random.Random(run)
    payloads = [b"", b"\xff\xfe\x00garbage", b"{not json", os.urandom(3000), b"x" * (1 << 20)]
    payloads += [rng.randbytes(rng.randint(1, 500)) for _ in range(50)]
    device = f"fuzz-{run}"
    topic = device_topic("17300", "mobility", device)
    unrouted = f"zc/17300/unknown-family/{device}"
    publisher = Publisher(settings, f"test-fuzzer-{run}", gateway_login)
    try:
        infos = [publisher.publish(topic, p) for p in payloads]
        infos.append(publisher.publish(unrouted, b'{"what": "no family"}'))
        for info in infos:
            info.wait_for_publish(timeout=30)
        found = await read_payloads(
            kafka_admin,
            [raw_topic("mobility")],
            keep=lambda t, _p: t == topic,
            done=lambda got: len(got) >= len(payloads),
            timeout=60,
        )
        dead = await read_payloads(
            kafka_admin,
            [DEAD_LETTER_TOPIC],
            keep=lambda _t, p: unrouted.encode() in p,
            done=lambda got: len(got) >= 1,
            timeout=30,
        )
        mine = _wait_for_status(f"test-bridge-{run}", lambda s: s["dead_lettered"] >= 1)
    finally:
        publisher.close()
        stop_child(bridge)
        forget_session(
            settings.mqtt_host,
            settings.mqtt_port,
            f"test-bridge-{run}",
            gateway_login,
            ca_file=mqtt_ca_file(settings),
        )
        forget_session(
            settings.mqtt_host,
            settings.mqtt_port,
            f"test-fuzzer-{run}",
            gateway_login,
            ca_file=mqtt_ca_file(settings),
        )
    assert [p for _, p in found] == payloads
    record = json.loads(dead[0][1])
    assert record["origin"] == {
        "transport": "mqtt", "topic": unrouted, "partition": None, "offset": None, "key": None, "index": None,
    }  # fmt: skip
    assert record["errors"][0]["type"] == "unrouted_topic"
    assert mine["ready"] is True
    assert mine["received"]["mobility"] == len(payloads)
    assert mine["forwarded"]["mobility"] == len(payloads)
    assert mine["dead_lettered"] == 1
    assert mine["in_flight"] == 0


async def test_two_bridges_on_a_shared_subscription_split_the_load_and_lose_nothing(
    settings: Settings, kafka_admin: KafkaAccess, tmp_path: Path, gateway_login: MqttLogin
) -> None:
    run = uuid.uuid4().hex[:8]
    total = 4_000
    client_ids = [f"test-shared-{run}-{n}" for n in range(2)]
    env = {"ZC_BRIDGE_SHARED_GROUP": f"test-{run}"}
    bridges = []
    for client_id in client_ids:
        log = tmp_path / f"{client_id}.log"
        bridges.append(start_service(["bridge", "--client-id", client_id], log, env))
    publisher = Publisher(settings, f"test-device-{run}", gateway_login)
    topic = device_topic("17300", "energy", "elec-17300-0001")
    try:
        infos = [publisher.publish(topic, _reading(run, k)) for k in range(total)]
        for info in infos:
            info.wait_for_publish(timeout=60)
        marker = f'"test-{run}"'.encode()
        found = await read_payloads(
            kafka_admin,
            [raw_topic("energy")],
            keep=lambda _t, p: marker in p,
            done=lambda got: len(set(_event_ids(got))) >= total,
            timeout=120,
        )
        # A status file is rewritten every second: one written between two batches says
        # in_flight 0 before the last ones came in. Wait until the two agree with Kafka.
        statuses = _wait_for_statuses(
            client_ids,
            lambda all_: (
                all(s["in_flight"] == 0 for s in all_)
                and sum(s["forwarded"].get("energy", 0) for s in all_) >= total
            ),
        )
    finally:
        publisher.close()
        for bridge in bridges:
            stop_child(bridge)
        for client_id in [*client_ids, f"test-device-{run}"]:
            forget_session(
                settings.mqtt_host,
                settings.mqtt_port,
                client_id,
                gateway_login,
                ca_file=mqtt_ca_file(settings),
            )
    assert set(_event_ids(found)) == {f"{run}-{k}" for k in range(total)}
    forwarded = [s["forwarded"].get("energy", 0) for s in statuses]
    assert all(n > 0 for n in forwarded), f"one bridge took no share: {forwarded}"
    assert sum(forwarded) >= total
    assert all(s["subscriptions"][0].startswith(f"$share/test-{run}/") for s in statuses)


async def test_a_reading_kafka_refuses_is_dead_lettered_and_the_flow_goes_on(
    settings: Settings, kafka_admin: KafkaAccess, bridge_log: Path, gateway_login: MqttLogin
) -> None:
    """A reading just under Mosquitto's 10 MiB limit makes a record above Kafka's once framed.
    Retried forever, it stopped every acknowledgement, and a restart had it delivered again
    (issue 19): it is dead-lettered with Kafka's reason, and the next reading passes."""
    run = uuid.uuid4().hex[:8]
    client_id = f"test-bridge-{run}"
    bridge, _ = _start_bridge(bridge_log, client_id)
    topic = device_topic("17300", "energy", f"huge-{run}")
    huge = run.encode() + b"x" * (10 * 1024 * 1024 - 10 - len(run))
    after = _reading(run, 1)
    publisher = Publisher(settings, f"test-huge-{run}", gateway_login)
    try:
        for info in [publisher.publish(topic, huge), publisher.publish(topic, after)]:
            info.wait_for_publish(timeout=60)
        found = await read_payloads(
            kafka_admin, [raw_topic("energy")], keep=lambda t, _p: t == topic,
            done=lambda got: len(got) >= 1, timeout=60,
        )  # fmt: skip
        letters = await dead_letters_holding(kafka_admin, run.encode() + b"xxxx", timeout=60)
        mine = _wait_for_status(client_id, lambda s: s["dead_lettered"] >= 1 and s["in_flight"] == 0)
    finally:
        publisher.close()
        stop_child(bridge)
        for session in (client_id, f"test-huge-{run}"):
            forget_session(
                settings.mqtt_host, settings.mqtt_port, session, gateway_login, ca_file=mqtt_ca_file(settings)
            )
    assert [p for _, p in found] == [after]
    (letter,) = letters
    assert letter["stage"] == "bridge" and letter["family"] == "energy"
    assert letter["errors"][0]["type"] == "kafka_refused"
    assert "MessageSizeTooLarge" in letter["errors"][0]["message"]
    assert letter["payload_size"] == len(huge) and letter["origin"]["topic"] == topic
    assert mine["forwarded"]["energy"] == 1 and mine["dead_lettered"] == 1 and mine["in_flight"] == 0


async def test_a_bridge_whose_kafka_loop_dies_stops_with_an_error_instead_of_half_running(
    settings: Settings,
    tmp_path: Path,
    bridge_login: MqttLogin,
    gateway_login: MqttLogin,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An unexpected exception in the loop that writes to Kafka used to end that loop alone: the
    MQTT session stayed up, nothing was acknowledged, and the status still said ready. Now the
    bridge stops, raising (the process exits non-zero for its supervisor), its status says it
    is not ready, and the reading it held comes back to the next session."""
    run = uuid.uuid4().hex[:8]
    client_id = f"test-dying-{run}"
    config = BridgeConfig(
        mqtt_host=settings.mqtt_host, mqtt_port=settings.mqtt_port, kafka=kafka_access(settings, BRIDGE),
        client_id=client_id, status_file=tmp_path / "bridge.status.json", login=bridge_login,
        mqtt_ca_file=mqtt_ca_file(settings),
    )  # fmt: skip

    async def broken(_self: MqttToKafkaBridge, _producer: object, _batch: object) -> None:
        raise RuntimeError("a bug of ours")

    monkeypatch.setattr(MqttToKafkaBridge, "_forward", broken)
    bridge, stop = MqttToKafkaBridge(config), asyncio.Event()
    try:
        task = asyncio.create_task(bridge.run(stop))
        await bridge.wait_subscribed(30)
        topic = device_topic("17300", "energy", f"dying-{run}")
        await asyncio.to_thread(
            publish_qos1, settings.mqtt_host, settings.mqtt_port, f"test-dying-pub-{run}",
            [(topic, _reading(run, 0))], login=gateway_login, ca_file=mqtt_ca_file(settings),
        )  # fmt: skip
        with pytest.raises(RuntimeError, match="a bug of ours"):
            await asyncio.wait_for(task, timeout=30)
        status = json.loads(config.status_file.read_text())
        assert status["kafka_ready"] is False and status["mqtt_connected"] is False
        monkeypatch.undo()
        again, stop_again = MqttToKafkaBridge(config), asyncio.Event()
        second = asyncio.create_task(again.run(stop_again))
        await again.wait_subscribed(30)
        deadline = asyncio.get_running_loop().time() + 30
        while again.counters.forwarded["energy"] < 1 and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.1)
        stop_again.set()
        await second
        assert again.counters.forwarded["energy"] == 1  # not lost: redelivered, then forwarded
    finally:
        stop.set()
        forget_session(
            settings.mqtt_host, settings.mqtt_port, client_id, bridge_login, ca_file=mqtt_ca_file(settings)
        )
