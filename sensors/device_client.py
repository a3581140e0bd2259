"""An embeddable MQTT device client: credentials, QoS 1, reconnection with backoff, and a
bounded buffer while offline.

What a device maker would put in a meter: it publishes a reading (or a batch) at QoS 1 over
MQTT 5 and never blocks on the network. While the broker is unreachable the readings wait
in a bounded buffer (the oldest are dropped first, and counted, when it is full: a meter
must not run out of memory during a long outage); paho reconnects with exponential backoff
and the buffer is flushed on reconnection, oldest first.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from config.tls import client_tls_context

Message = tuple[str, bytes]


class OfflineBuffer:
    """Messages kept while offline, at most ``capacity``; the oldest go first when full."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("the offline buffer needs room for at least one message")
        self._messages: deque[Message] = deque(maxlen=capacity)
        self.dropped = 0

    def append(self, message: Message) -> None:
        if len(self._messages) == self._messages.maxlen:
            self.dropped += 1
        self._messages.append(message)

    def take_all(self) -> list[Message]:
        """Every buffered message, oldest first; the buffer is empty after."""
        out = list(self._messages)
        self._messages.clear()
        return out

    def __len__(self) -> int:
        return len(self._messages)


class DeviceClient:
    """One device's MQTT 5 connection: publish at QoS 1, buffer while offline, reconnect."""

    def __init__(
        self,
        host: str,
        port: int,
        client_id: str,
        *,
        username: str | None = None,
        password: str | None = None,
        buffer_size: int = 10_000,
        min_backoff: float = 1.0,
        max_backoff: float = 60.0,
        max_inflight: int = 100,
        keepalive: int = 30,
        ca_file: Path | None = None,
    ) -> None:
        """``ca_file``: connect over TLS, trusting that CA."""
        self.host, self.port, self.keepalive = host, port, keepalive
        self.buffer = OfflineBuffer(buffer_size)
        self.sent = 0
        self.acknowledged = 0
        # PUBACKs with a refusal (MQTT 5 reason 0x80 and above, e.g. 0x87 not authorized: the
        # credential may not publish on that topic): the broker dropped those messages.
        self.refused = 0
        self._lock = threading.Lock()
        self._connected = threading.Event()
        self._answered = threading.Event()  # the broker's first CONNACK, whatever it said
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        if username is not None:
            self._client.username_pw_set(username, password)
        if ca_file is not None:
            self._client.tls_set_context(client_tls_context(ca_file))
        self._client.reconnect_delay_set(min_delay=int(max(1, min_backoff)), max_delay=int(max_backoff))
        self._client.max_inflight_messages_set(max_inflight)
        self._client.max_queued_messages_set(0)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        # Count PUBACKs ourselves: a message queued while disconnected keeps an error code in
        # its MQTTMessageInfo even after paho has sent it.
        self._client.on_publish = self._on_publish
        self.connection_refused: str | None = None

    def connect(self, timeout: float = 30.0) -> None:
        """Start the network loop and wait for the first connection (later ones are automatic)."""
        self._client.connect_async(self.host, self.port, keepalive=self.keepalive)
        self._client.loop_start()
        if not (self._answered.wait(timeout) and self._connected.is_set()):
            self._client.loop_stop()
            if self.connection_refused:
                raise ConnectionError(
                    f"MQTT broker {self.host}:{self.port} refused the connection "
                    f"({self.connection_refused}): check the user name and password"
                )
            raise TimeoutError(f"MQTT broker {self.host}:{self.port} did not accept the connection")

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def publish(self, topic: str, payload: bytes) -> None:
        """Publish at QoS 1 now, or keep the message for the next connection."""
        with self._lock:
            if self._connected.is_set():
                self._client.publish(topic, payload, qos=1)
                self.sent += 1
            else:
                self.buffer.append((topic, payload))

    def publish_many(self, messages: Iterable[Message]) -> None:
        """Publish a batch, in order."""
        for topic, payload in messages:
            self.publish(topic, payload)

    def wait_acknowledged(self, timeout: float = 30.0) -> int:
        """Wait until the broker has answered every message handed to it (or timeout); how many
        it accepted (``refused`` counts the others)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and (
            self.acknowledged + self.refused < self.sent or len(self.buffer)
        ):
            time.sleep(0.02)
        return self.acknowledged

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, reason: ReasonCode, _p: Any) -> None:
        if reason.is_failure:
            self.connection_refused = str(reason)
            self._answered.set()
            return
        with self._lock:
            for topic, payload in self.buffer.take_all():
                client.publish(topic, payload, qos=1)
                self.sent += 1
            self._connected.set()
        self._answered.set()

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, _reason: ReasonCode, _p: Any) -> None:
        self._connected.clear()

    def _on_publish(self, _c: mqtt.Client, _u: Any, _mid: int, reason: ReasonCode, _p: Any) -> None:
        if reason.is_failure:
            self.refused += 1
        else:
            self.acknowledged += 1
