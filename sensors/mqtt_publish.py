"""Publish payloads over MQTT 5 at QoS 1 and wait until the broker has acknowledged each one."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from config.tls import client_tls_context
from schemas.mqtt_principals import MqttLogin


def publish_payloads(
    host: str,
    port: int,
    messages: Iterable[tuple[str, bytes]],
    login: MqttLogin | None,
    timeout: float = 30.0,
    ca_file: Path | None = None,
) -> int:
    """Publish each (topic, payload) at QoS 1 as ``login`` (over TLS with ``ca_file``); return
    how many the broker accepted (a message its ACLs refuse is answered, not counted)."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    if login is not None:
        client.username_pw_set(login.username, login.password)
    if ca_file is not None:
        client.tls_set_context(client_tls_context(ca_file))
    client.max_queued_messages_set(0)
    answered = threading.Event()
    refused: list[str] = []
    accepted: set[int] = set()
    answers: set[int] = set()

    def on_connect(_c: mqtt.Client, _u: object, _f: object, reason: ReasonCode, _p: object) -> None:
        if reason.is_failure:
            refused.append(str(reason))
        answered.set()

    def on_publish(_c: mqtt.Client, _u: object, mid: int, reason: ReasonCode, _p: object) -> None:
        answers.add(mid)
        if not reason.is_failure:
            accepted.add(mid)

    client.on_connect = on_connect
    # Count PUBACKs ourselves: a message queued while disconnected keeps an error code in
    # its MQTTMessageInfo even after paho has sent it.
    client.on_publish = on_publish
    client.connect(host, port, keepalive=30)
    client.loop_start()
    try:
        if not answered.wait(timeout):
            raise TimeoutError(f"MQTT broker {host}:{port} did not accept the connection")
        if refused:
            raise ConnectionError(
                f"MQTT broker {host}:{port} refused the connection ({refused[0]}): check the user name "
                "and password"
            )
        mids = {client.publish(topic, payload, qos=1).mid for topic, payload in messages}
        deadline = time.monotonic() + timeout
        while not mids <= answers and time.monotonic() < deadline:
            time.sleep(0.05)
        return len(mids & accepted)
    finally:
        client.disconnect()
        client.loop_stop()
