"""`zerocarbon simulate` against the real Mosquitto: what its report says was sent arrived,
family by family and fault by fault.

Runs on a topic root of its own under ``zc-sandbox/`` (never ``zc/``: the bridge's persistent
session would keep the messages), so it needs Mosquitto only, not Kafka. The simulator
publishes as the gateway, which the local stack lets use ``zc-sandbox/#`` too.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from pydantic import ValidationError

from config.settings import Settings
from schemas.families import FAMILIES
from schemas.mqtt_principals import SANDBOX_ROOT, MqttLogin
from stack import control
from stack.stack_config import StackConfig
from tests.mqtt_tls import secure
from tests.simulate_command import simulate


@pytest.fixture(scope="session")
def local_stack(settings: Settings, stack_config: StackConfig) -> Iterator[Settings]:
    """Only Mosquitto is needed: check it serves (start the stack if it does not)."""
    mosquitto = [s for s in control.status(stack_config) if s["name"] == "mosquitto"]
    if not (mosquitto and mosquitto[0]["healthy"]):
        report = control.up(stack_config)
        assert all(s["healthy"] for s in report if s["name"] == "mosquitto"), report
    yield settings


class Subscriber:
    """A paho subscriber on ``<root>/#`` that keeps every (topic, payload) it receives."""

    def __init__(self, settings: Settings, root: str, login: MqttLogin) -> None:
        self.received: list[tuple[str, bytes]] = []
        self._subscribed = threading.Event()
        self._granted: list[bool] = []
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self._client.username_pw_set(login.username, login.password)
        self._client.on_connect = lambda c, *_: c.subscribe(f"{root}/#", qos=1)
        self._client.on_subscribe = lambda _c, _u, _m, codes, _p: (
            self._granted.extend(not code.is_failure for code in codes),
            self._subscribed.set(),
        )
        self._client.on_message = lambda _c, _u, msg: self.received.append((msg.topic, msg.payload))
        secure(self._client, settings)
        self._client.connect(settings.mqtt_host, settings.mqtt_port)
        self._client.loop_start()
        assert self._subscribed.wait(10), "the subscription was not acknowledged"
        assert all(self._granted), f"the broker refused {login.username!r} the subscription to {root}/#"

    def wait_for(self, count: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)  # anything beyond the report would show up now

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


def _reconcile(report: dict[str, Any], received: list[tuple[str, bytes]], root: str) -> None:
    assert len(received) == report["messages"] == report["acknowledged"]
    per_family = Counter(topic.split("/")[-2] for topic, _ in received)
    assert per_family == {family: f["messages"] for family, f in report["per_family"].items()}
    refused: Counter[str] = Counter()
    event_ids: Counter[str] = Counter()
    for topic, payload in received:
        assert topic.startswith(f"{root}/")
        family = topic.split("/")[-2]
        try:
            event = FAMILIES[family].parse_json(payload)
        except ValidationError:
            refused[family] += 1
            continue
        event_ids[str(getattr(event, "event_id"))] += 1  # noqa: B009 - a field of every family
    malformed = {family: f["faults"].get("malformed", 0) for family, f in report["per_family"].items()}
    assert refused == +Counter(malformed)
    assert sum(n - 1 for n in event_ids.values()) == report["per_fault"]["duplicate"]
    expected = report["expected_at_validation"]
    assert expected["dead_lettered"] == sum(refused.values())
    assert expected["accepted"] == len(event_ids)


def test_a_faulty_territory_at_high_rate_arrives_as_reported(
    settings: Settings, gateway_login: MqttLogin
) -> None:
    root = f"{SANDBOX_ROOT}/test-{uuid.uuid4().hex[:10]}"
    subscriber = Subscriber(settings, root, gateway_login)
    try:
        report = simulate(
            "--devices", "3000", "--rate", "8000", "--count", "20000", "--seed", "11",
            "--topic-root", root, "--publisher", "socket",
            "--malformed", "0.02", "--duplicate", "0.02", "--out-of-order", "0.02", "--late", "0.02",
            "--clock-skew", "0.05", "--offline", "0.001", "--index-reset", "0.01",
        )  # fmt: skip
        subscriber.wait_for(report["messages"], timeout=60)
    finally:
        subscriber.close()
    assert report["messages"] >= 20_000
    assert all(report["per_fault"][f] > 0 for f in ("malformed", "duplicate", "late", "clock_skew"))
    _reconcile(report, subscriber.received, root)


def test_the_embeddable_device_client_publishes_a_gentle_territory(
    settings: Settings, gateway_login: MqttLogin
) -> None:
    root = f"{SANDBOX_ROOT}/test-{uuid.uuid4().hex[:10]}"
    subscriber = Subscriber(settings, root, gateway_login)
    try:
        report = simulate(
            "--devices", "200", "--rate", "400", "--count", "600", "--topic-root", root,
            "--publisher", "paho", "--malformed", "0.05", "--duplicate", "0.05",
        )  # fmt: skip
        subscriber.wait_for(report["messages"], timeout=30)
    finally:
        subscriber.close()
    assert report["publisher"] == "DeviceClient"
    _reconcile(report, subscriber.received, root)
