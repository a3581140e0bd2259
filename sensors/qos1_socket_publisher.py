"""A fast MQTT 5 QoS 1 publisher: pre-encoded PUBLISH packets over a raw socket.

paho publishes about 6 000 QoS 1 messages/s per process here and `mosquitto_pub -l` exits
before its queue is acknowledged (it lost two thirds of 100 000 lines in a test), so the
simulator's high-rate path and the benchmarks use this: it keeps at most ``window``
messages unacknowledged (within the broker's Receive Maximum) and counts every PUBACK.
It does not reconnect: a load generator that loses its broker should stop and say so
(``sensors/device_client.py`` is the resilient, embeddable client). Its packets are the
bridge's (``schemas/mqtt_packets.py``): one codec for both ends of the broker.
"""

from __future__ import annotations

import select
import socket
import time
from collections.abc import Iterable
from pathlib import Path

from config.tls import client_tls_context
from schemas.mqtt_packets import (
    CONNACK,
    DISCONNECT_PACKET,
    MQTT_5,
    Connack,
    count_puback_outcomes,
    decode_connack,
    encode_connect,
    encode_publish_prepared,
    encode_topic,
    publish_properties,
    split_packets,
)
from schemas.mqtt_principals import MqttLogin
from sensors.buffered_tls import BufferedTlsSocket


class Qos1SocketPublisher:
    """One MQTT 5 connection publishing at QoS 1 with at most ``window`` messages in flight."""

    def __init__(
        self,
        host: str,
        port: int,
        client_id: str,
        window: int = 500,
        username: str | None = None,
        password: str | None = None,
        timeout: float = 30.0,
        message_expiry_seconds: int | None = None,
        ca_file: Path | None = None,
    ) -> None:
        """``ca_file``: connect over TLS, trusting that CA."""
        self.window = window
        # A message expiry lets the broker drop a load nobody subscribed to take.
        self._properties = publish_properties(message_expiry_seconds)
        self.timeout = timeout
        self.sent = 0
        self.acknowledged = 0
        # PUBACKs with a refusal (MQTT 5 reason 0x80 and above: 0x87 not authorized on a
        # topic the login may not publish on): the broker dropped those messages.
        self.refused = 0
        self._rest = b""  # the start of a packet still to come
        self._topics: dict[str, bytes] = {}  # topic -> its encoded name, length first
        tcp = socket.create_connection((host, port), timeout=timeout)
        self._sock: socket.socket | BufferedTlsSocket = tcp
        try:
            tcp.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if ca_file is not None:
                self._sock = BufferedTlsSocket(tcp, client_tls_context(ca_file), host)
            self._sock.sendall(
                encode_connect(
                    client_id,
                    version=MQTT_5,
                    keepalive=60,
                    clean_start=True,
                    username=username,
                    password=password,
                )
            )
            connack = self._receive_connack()
            if connack.refused:
                raise ConnectionError(
                    f"MQTT broker {host}:{port} refused the connection (reason code "
                    f"{connack.reason_code:#x}): check the credentials and the client id"
                )
        except BaseException:
            tcp.close()
            raise

    def _receive_connack(self) -> Connack:
        while True:
            data = self._receive()
            _, others, used = split_packets(data, MQTT_5)
            self._rest = data[used:]
            for packet in others:
                if packet.kind == CONNACK:
                    return decode_connack(packet.body, MQTT_5)

    def _receive(self) -> bytes:
        data = self._sock.recv(1 << 16)
        if not data:
            raise ConnectionError("the MQTT broker closed the connection")
        return self._rest + data if self._rest else data

    def _collect_acks(self, block: bool) -> None:
        # TLS may hold bytes already read that select() cannot see.
        if not block and not (isinstance(self._sock, BufferedTlsSocket) and self._sock.pending()):
            ready, _, _ = select.select([self._sock], [], [], 0)
            if not ready:
                return
        data = self._receive()
        accepted, refused, used = count_puback_outcomes(data, MQTT_5)
        self._rest = data[used:]
        self.acknowledged += accepted
        self.refused += refused

    def publish_many(self, messages: Iterable[tuple[str, bytes]]) -> None:
        """Send every (topic, payload); block only while ``window`` messages await their PUBACK."""
        pending = bytearray()
        properties = self._properties
        topics = self._topics
        for topic, payload in messages:
            if self.sent - self.acknowledged - self.refused >= self.window:
                if pending:
                    self._sock.sendall(pending)
                    pending.clear()
                while self.sent - self.acknowledged - self.refused >= self.window:
                    self._collect_acks(block=True)
            self.sent += 1
            name = topics.get(topic)  # a topic is encoded once: the per-message path
            if name is None:
                if len(topics) > 100_000:
                    topics.clear()
                name = topics[topic] = encode_topic(topic)
            pending += encode_publish_prepared(name, payload, (self.sent % 65535) + 1, properties)
        if pending:
            self._sock.sendall(pending)
        self._collect_acks(block=False)

    def wait_acknowledged(self) -> int:
        """Wait (up to the timeout) until the broker has answered every message sent; return
        how many it accepted (``refused`` counts the others)."""
        deadline = time.monotonic() + self.timeout
        while self.acknowledged + self.refused < self.sent and time.monotonic() < deadline:
            self._collect_acks(block=True)
        return self.acknowledged

    def close(self) -> None:
        try:
            self._sock.sendall(DISCONNECT_PACKET)
        finally:
            self._sock.close()


def publish_qos1(
    host: str,
    port: int,
    client_id: str,
    messages: Iterable[tuple[str, bytes]],
    window: int = 500,
    message_expiry_seconds: int | None = None,
    login: MqttLogin | None = None,
    ca_file: Path | None = None,
) -> int:
    """Publish every (topic, payload) at QoS 1 as ``login``; return how many the broker
    accepted (a message refused by its ACLs is not counted)."""
    publisher = Qos1SocketPublisher(
        host,
        port,
        client_id,
        window,
        username=login.username if login else None,
        password=login.password if login else None,
        message_expiry_seconds=message_expiry_seconds,
        ca_file=ca_file,
    )
    try:
        publisher.publish_many(messages)
        return publisher.wait_acknowledged()
    finally:
        publisher.close()
