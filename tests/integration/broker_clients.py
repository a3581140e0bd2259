"""Clients that record what the real brokers answer, for the tests of who may do what."""

from __future__ import annotations

import threading
import time

import paho.mqtt.client as mqtt
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from config.kafka_access import KafkaAccess
from config.settings import Settings
from schemas.mqtt_principals import MqttLogin
from tests.mqtt_tls import secure

NOT_AUTHORIZED = 0x87  # MQTT 5 reason code, in CONNACK, PUBACK and SUBACK alike


class Client:
    """A paho MQTT 5 client that records what the broker answers: CONNACK, PUBACKs, SUBACKs,
    the disconnection and its time."""

    def __init__(self, settings: Settings, login: MqttLogin | None, client_id: str = "") -> None:
        self.connack: ReasonCode | None = None
        self.pubacks: dict[int, ReasonCode] = {}
        self.subacks: list[ReasonCode] = []
        self.disconnected_at: float | None = None
        self.disconnect_reason: ReasonCode | None = None
        self._answered = threading.Event()
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        if login is not None:
            self._client.username_pw_set(login.username, login.password)
        self._client.on_connect = self._on_connect
        self._client.on_publish = lambda _c, _u, mid, reason, _p: self.pubacks.__setitem__(mid, reason)
        self._client.on_subscribe = lambda _c, _u, _mid, codes, _p: self.subacks.extend(codes)
        self._client.on_disconnect = self._on_disconnect
        self._client.reconnect_delay_set(60, 120)  # no automatic reconnection during a test
        secure(self._client, settings)
        self._client.connect(settings.mqtt_host, settings.mqtt_port, keepalive=10)
        self._client.loop_start()
        assert self._answered.wait(10), "no CONNACK"

    def _on_connect(self, _c: mqtt.Client, _u: object, _f: object, reason: ReasonCode, _p: object) -> None:
        self.connack = reason
        self._answered.set()

    def _on_disconnect(self, _c: mqtt.Client, _u: object, _f: object, reason: ReasonCode, _p: object) -> None:
        if self.disconnected_at is None:
            self.disconnected_at = time.monotonic()
            self.disconnect_reason = reason

    @property
    def accepted(self) -> bool:
        return self.connack is not None and not self.connack.is_failure

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> ReasonCode:
        """Publish at QoS 1 and wait for the PUBACK; its reason code."""
        mid = self._client.publish(topic, payload, qos=1, retain=retain).mid
        deadline = time.monotonic() + 10
        while mid not in self.pubacks and time.monotonic() < deadline:
            time.sleep(0.02)
        assert mid in self.pubacks, f"no PUBACK for {topic}"
        return self.pubacks[mid]

    def subscribe(self, topic_filter: str) -> ReasonCode:
        before = len(self.subacks)
        self._client.subscribe(topic_filter, qos=1)
        deadline = time.monotonic() + 10
        while len(self.subacks) == before and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(self.subacks) > before, f"no SUBACK for {topic_filter}"
        return self.subacks[-1]

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


async def send_one(kafka: KafkaAccess, topic: str, value: bytes) -> None:
    """Produce one record keyed by a commune, as ``kafka``'s principal: an authorization
    error surfaces as an exception."""
    producer = AIOKafkaProducer(**kafka.client_options(), acks="all", request_timeout_ms=10_000)
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, key=b"17300")
    finally:
        await producer.stop()


async def visible_topics(kafka: KafkaAccess) -> set[str]:
    """The topics the broker lets ``kafka``'s principal describe (and so read or write): Kafka
    answers a principal's metadata request with those only."""
    consumer = AIOKafkaConsumer(**kafka.client_options(), enable_auto_commit=False)
    await consumer.start()
    try:
        return set(await consumer.topics())
    finally:
        await consumer.stop()
