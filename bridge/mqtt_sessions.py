"""Retire a persistent MQTT session, so the broker stops queueing messages for it.

A bridge's session outlives the process on purpose (nothing is lost while it restarts);
the flip side is that a bridge retired for good, or a test's throw-away bridge, leaves a
session that Mosquitto keeps filling until it expires. Connecting once with the same
client id, clean start and a zero session expiry discards it.
"""

from __future__ import annotations

import threading
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from config.tls import client_tls_context
from schemas.mqtt_principals import MqttLogin


def forget_session(
    host: str,
    port: int,
    client_id: str,
    login: MqttLogin | None,
    timeout: float = 10.0,
    ca_file: Path | None = None,
) -> bool:
    """Discard the broker's session of ``client_id``; True once the broker confirmed. Any
    principal the broker accepts may do it (the bridge's own, for a bridge). ``ca_file``: over
    TLS, trusting that CA."""
    connected = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    if login is not None:
        client.username_pw_set(login.username, login.password)
    if ca_file is not None:
        client.tls_set_context(client_tls_context(ca_file))
    client.on_connect = lambda _c, _u, _f, reason, _p: None if reason.is_failure else connected.set()
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 0
    client.connect(host, port, keepalive=10, clean_start=True, properties=props)
    client.loop_start()
    try:
        return connected.wait(timeout)
    finally:
        client.disconnect()
        client.loop_stop()
