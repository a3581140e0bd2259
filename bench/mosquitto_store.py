"""Mosquitto's message store, watched while a benchmark runs: the messages it holds for
sessions (the bridge's among them) and their bytes.

Mosquitto publishes ``$SYS/broker/store/messages/count`` and ``.../bytes`` every 10 s
(docs/local-stack.md), and ``$SYS/broker/retained messages/count``; only the admin principal
may read ``$SYS``. The store also holds the retained messages (the sink's retained indicators
among them): what it holds beyond those is queued or in flight for sessions, the bridge's
among them. That growing under a steady load means a subscriber is falling behind.
"""

from __future__ import annotations

import threading
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from config.settings import Settings
from config.tls import client_tls_context
from schemas.mqtt_principals import ADMIN
from zerocarbon.component_configs import mqtt_ca_file, mqtt_login

STORE_TOPIC = "$SYS/broker/store/messages/"
RETAINED_TOPIC = "$SYS/broker/retained messages/count"


class MosquittoStoreWatcher:
    """The latest store figures Mosquitto published, as the admin; ``latest()`` is empty until
    the broker's first publication (within 10 s)."""

    def __init__(self, settings: Settings, client_id: str) -> None:
        admin = mqtt_login(settings, ADMIN)
        self._values: dict[str, int] = {}
        self._lock = threading.Lock()
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        self._client.username_pw_set(admin.username, admin.password)
        ca_file = mqtt_ca_file(settings)
        if ca_file is not None:
            self._client.tls_set_context(client_tls_context(ca_file))
        self._client.on_connect = self._on_connect
        self._client.on_message = self._on_message
        self._host, self._port = settings.mqtt_host, settings.mqtt_port

    def start(self) -> MosquittoStoreWatcher:
        self._client.connect(self._host, self._port, keepalive=30)
        self._client.loop_start()
        return self

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def latest(self) -> dict[str, int]:
        """``count`` and ``bytes`` of the store and ``retained`` (messages) as last published."""
        with self._lock:
            return dict(self._values)

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
        if not rc.is_failure:
            client.subscribe([(STORE_TOPIC + "#", 0), (RETAINED_TOPIC, 0)])

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        name = "retained" if msg.topic == RETAINED_TOPIC else msg.topic.removeprefix(STORE_TOPIC)
        try:
            value = int(msg.payload)
        except ValueError:
            return
        with self._lock:
            self._values[name] = value
