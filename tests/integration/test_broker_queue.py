"""The sink reports what Mosquitto queues for an absent client (issue 19): a persistent
session leaves, readings arrive for it, and the sink's /metrics shows Mosquitto's stored
messages grow by as many (read from $SYS with the sink's own login), beside the configured
limit the alert ZcMqttQueueFilling compares them with."""

from __future__ import annotations

import os
import re
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from config.settings import Settings
from schemas.mqtt_principals import SANDBOX_ROOT, MqttLogin
from sinks.indicator_sink import read_sink_statuses
from tests.integration.broker_clients import Client
from tests.mqtt_tls import secure
from zerocarbon.component_configs import sink_config

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
def absent_client(settings: Settings, gateway_login: MqttLogin) -> Iterator[tuple[str, str]]:
    """A persistent session subscribed to a sandbox topic (no bridge reads it), then gone;
    ended after the test."""
    client_id, topic = (
        f"zc-absent-{uuid.uuid4().hex[:8]}",
        f"{SANDBOX_ROOT}/queue-test/{uuid.uuid4().hex[:8]}",
    )
    _session(settings, gateway_login, client_id, clean=False, topic=topic)
    yield client_id, topic
    _session(settings, gateway_login, client_id, clean=True, topic=None)


def test_the_sink_reports_what_mosquitto_queues_for_an_absent_client(
    settings: Settings, sink: Path, gateway_login: MqttLogin, absent_client: tuple[str, str]
) -> None:
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
