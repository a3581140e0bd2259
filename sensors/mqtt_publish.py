"""Publish payloads over MQTT 5 at QoS 1 and wait until the broker has acknowledged each one."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion


def publish_payloads(
    host: str, port: int, messages: Iterable[tuple[str, bytes]], timeout: float = 30.0
) -> int:
    """Publish each (topic, payload) at QoS 1; return how many the broker acknowledged."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.max_queued_messages_set(0)
    connected = threading.Event()
    acknowledged: set[int] = set()
    client.on_connect = lambda *_args: connected.set()
    # Count PUBACKs ourselves: a message queued while disconnected keeps an error code in
    # its MQTTMessageInfo even after paho has sent it.
    client.on_publish = lambda _c, _u, mid, _rc, _p: acknowledged.add(mid)
    client.connect(host, port, keepalive=30)
    client.loop_start()
    try:
        if not connected.wait(timeout):
            raise TimeoutError(f"MQTT broker {host}:{port} did not accept the connection")
        mids = {client.publish(topic, payload, qos=1).mid for topic, payload in messages}
        deadline = time.monotonic() + timeout
        while not mids <= acknowledged and time.monotonic() < deadline:
            time.sleep(0.05)
        return len(mids & acknowledged)
    finally:
        client.disconnect()
        client.loop_stop()
