"""Publish readings over MQTT 5 at QoS 1 and wait until the broker has acknowledged each one."""

from __future__ import annotations

import threading
from collections.abc import Iterable

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from schemas.smoke_reading import SmokeReading


def device_topic(prefix: str, device_id: str) -> str:
    """The MQTT topic a device publishes on: ``<prefix>/<device_id>``."""
    return f"{prefix}/{device_id}"


def publish_readings(
    host: str, port: int, topic_prefix: str, readings: Iterable[SmokeReading], timeout: float = 30.0
) -> int:
    """Publish each reading at QoS 1; return how many the broker acknowledged (PUBACK)."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    connected = threading.Event()
    client.on_connect = lambda *_args: connected.set()
    client.connect(host, port, keepalive=30)
    client.loop_start()
    try:
        if not connected.wait(timeout):
            raise TimeoutError(f"MQTT broker {host}:{port} did not accept the connection")
        infos = [
            client.publish(device_topic(topic_prefix, r.device_id), r.model_dump_json().encode(), qos=1)
            for r in readings
        ]
        for info in infos:
            info.wait_for_publish(timeout)
        return sum(1 for info in infos if info.is_published())
    finally:
        client.disconnect()
        client.loop_stop()
