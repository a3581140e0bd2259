"""The sink reports what Mosquitto queues for an absent client (issue 19): a persistent
session leaves, readings arrive for it, and the sink's /metrics shows Mosquitto's stored
messages grow by as many (read from $SYS with the sink's own login), beside the configured
limit the alert ZcMqttQueueFilling compares them with.

$SYS counts the whole broker's store: on the suite's shared broker, sessions other tests left
expire meanwhile (a CI run saw the count fall by 160 while 300 were queued). So this test
runs its own Mosquitto, configured as `zerocarbon stack up` configures one, with the same
logins and CA, and a sink pointed at it."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from config.kafka_access import KafkaAccess
from config.settings import Settings
from schemas.catalogue import INDICATOR_TOPIC
from schemas.mqtt_principals import SANDBOX_ROOT, MqttLogin
from sinks.indicator_sink import read_sink_statuses
from stack.certificate_authority import tls_dir
from stack.mosquitto_broker import MosquittoBroker
from stack.stack_config import StackConfig
from streams.kafka_admin import start_group_at_end
from tests.free_ports import free_port
from tests.integration.broker_clients import Client
from tests.mqtt_tls import secure
from zerocarbon.component_configs import sink_config
from zerocarbon.processes import start_service, stop_child

READINGS = 300


def _metric(settings: Settings, name: str) -> float | None:
    """``name``'s value in the running sink's /metrics (found by its status file); None while
    there is none."""
    statuses = [s for s in read_sink_statuses(sink_config(settings).status_dir) if _alive(int(s["pid"]))]
    if not statuses:  # the sink writes its first status a moment after it says it is ready
        return None
    latest = max(statuses, key=lambda s: float(s["updated_at"]))
    with urllib.request.urlopen(f"http://127.0.0.1:{latest['metrics_port']}/metrics", timeout=5) as page:
        text = page.read().decode()
    found = re.search(rf"^{name}(?:{{[^}}]*}})? (\S+)$", text, re.M)
    return float(found.group(1)) if found else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def _wait_metric(settings: Settings, name: str, enough: float, seconds: float = 40) -> float | None:
    """The metric once it reaches ``enough`` ($SYS is published every 10 s), or its last value."""
    deadline, value = time.monotonic() + seconds, None
    while time.monotonic() < deadline:
        value = _metric(settings, name)
        if value is not None and value >= enough:
            break
        time.sleep(1)
    return value


def _session(settings: Settings, login: MqttLogin, client_id: str, clean: bool, topic: str | None) -> None:
    """Connect ``client_id`` (a session kept 10 minutes unless ``clean``), subscribe, leave."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    client.username_pw_set(login.username, login.password)
    secure(client, settings)
    properties = Properties(PacketTypes.CONNECT)
    properties.SessionExpiryInterval = 0 if clean else 600
    done = {"connected": False, "subscribed": False}
    client.on_connect = lambda *_: done.__setitem__("connected", True)
    client.on_subscribe = lambda *_: done.__setitem__("subscribed", True)
    client.connect(
        settings.mqtt_host, settings.mqtt_port, keepalive=10, clean_start=clean, properties=properties
    )
    client.loop_start()
    try:
        deadline = time.monotonic() + 10
        while not done["connected"] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert done["connected"], "no CONNACK"
        if topic is not None:
            client.subscribe(topic, qos=1)
            while not done["subscribed"] and time.monotonic() < deadline:
                time.sleep(0.05)
            assert done["subscribed"], "no SUBACK"
    finally:
        client.disconnect()
        client.loop_stop()


@pytest.fixture
def own_broker(settings: Settings, stack_config: StackConfig, tmp_path: Path) -> Iterator[Settings]:
    """A Mosquitto of this test alone (the suite's CA, the same service logins); the clients'
    settings to reach it."""
    home = tmp_path / "home"
    tls_dir(home).mkdir(mode=0o700, parents=True)
    for name in ("ca.key", "ca.crt"):  # its server certificate signed by the CA clients trust
        shutil.copy2(tls_dir(stack_config.home) / name, tls_dir(home) / name)
    logins = MosquittoBroker(stack_config).logins(generate=False)
    config = replace(
        stack_config,
        home=home,
        mosquitto_data_dir=None,
        mqtt_port=free_port(),
        mqtt_plain_port=free_port() if stack_config.mqtt_plain_port else 0,
        mqtt_passwords={principal: login.password for principal, login in logins.items()},
    )
    broker = MosquittoBroker(config)
    broker.start()
    try:
        broker.wait_ready()
        yield settings.model_copy(update={"mqtt_port": config.mqtt_port})
    finally:
        broker.stop()


@pytest.fixture
def own_sink(own_broker: Settings, kafka_admin: KafkaAccess, tmp_path: Path) -> Iterator[Path]:
    """A `zerocarbon sink` watching ``own_broker`` (from the end of zc.indicators)."""
    asyncio.run(start_group_at_end(kafka_admin, own_broker.sink_group, [INDICATOR_TOPIC]))
    log = tmp_path / "sink.log"
    proc = start_service(["sink"], log, env={"ZC_MQTT_PORT": str(own_broker.mqtt_port)})
    try:
        yield log
    finally:
        stop_child(proc)


@pytest.fixture
def absent_client(own_broker: Settings, gateway_login: MqttLogin) -> Iterator[tuple[str, str]]:
    """A persistent session subscribed to a sandbox topic (no bridge reads it), then gone;
    ended after the test."""
    client_id, topic = (
        f"zc-absent-{uuid.uuid4().hex[:8]}",
        f"{SANDBOX_ROOT}/queue-test/{uuid.uuid4().hex[:8]}",
    )
    _session(own_broker, gateway_login, client_id, clean=False, topic=topic)
    yield client_id, topic


def test_the_sink_reports_what_mosquitto_queues_for_an_absent_client(
    own_broker: Settings, own_sink: Path, gateway_login: MqttLogin, absent_client: tuple[str, str]
) -> None:
    settings = own_broker
    before = _wait_metric(settings, "zc_mqtt_broker_stored_messages", 0)
    assert before is not None, "the sink never reported Mosquitto's stored messages"
    assert _metric(settings, "zc_mqtt_queue_limit_messages") == settings.mqtt_max_queued_messages
    _, topic = absent_client
    publisher = Client(settings, gateway_login)
    try:
        for n in range(READINGS):
            assert not publisher.publish(topic, f'{{"n": {n}}}'.encode()).is_failure
    finally:
        publisher.close()
    after = _wait_metric(settings, "zc_mqtt_broker_stored_messages", before + READINGS)
    assert after is not None and after >= before + READINGS, (before, after)
    assert _metric(settings, "zc_mqtt_broker_dropped_messages_total") == 0
