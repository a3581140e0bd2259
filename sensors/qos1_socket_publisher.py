"""A fast MQTT 5 QoS 1 publisher: pre-encoded PUBLISH packets over a raw socket.

paho publishes about 6 000 QoS 1 messages/s per process here and `mosquitto_pub -l` exits
before its queue is acknowledged (it lost two thirds of 100 000 lines in a test), so the
simulator's high-rate path and the benchmarks use this: it keeps at most ``window``
messages unacknowledged (within the broker's Receive Maximum) and counts every PUBACK.
It does not reconnect: a load generator that loses its broker should stop and say so
(``sensors/device_client.py`` is the resilient, embeddable client).
"""

from __future__ import annotations

import select
import socket
import struct
import time
from collections.abc import Iterable

PUBACK = 4
CONNACK = 2
_PUBACK_HEAD = b"\x40\x02"


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _string(s: str) -> bytes:
    b = s.encode()
    return struct.pack(">H", len(b)) + b


def connect_packet(client_id: str, username: str | None = None, password: str | None = None) -> bytes:
    """MQTT 5 CONNECT: clean start, keepalive 60 s, no properties, optional credentials."""
    flags = 0x02 | (0x80 if username is not None else 0) | (0x40 if password is not None else 0)
    body = _string("MQTT") + bytes([5, flags]) + struct.pack(">H", 60) + b"\x00" + _string(client_id)
    if username is not None:
        body += _string(username)
    if password is not None:
        body += _string(password)
    return b"\x10" + _varint(len(body)) + body


def publish_packet(topic: bytes, mid: int, payload: bytes) -> bytes:
    """MQTT 5 PUBLISH at QoS 1 with packet id ``mid`` and no properties."""
    body = struct.pack(">H", len(topic)) + topic + struct.pack(">H", mid) + b"\x00" + payload
    return b"\x32" + _varint(len(body)) + body


def split_packets(buf: bytearray) -> list[tuple[int, bytes]]:
    """Remove the complete packets at the head of ``buf``: (packet type, body) each."""
    packets: list[tuple[int, bytes]] = []
    while True:
        if len(buf) < 2:
            return packets
        length, shift, pos = 0, 0, 1
        while True:
            if pos >= len(buf):
                return packets
            byte = buf[pos]
            length += (byte & 0x7F) << shift
            shift += 7
            pos += 1
            if not byte & 0x80:
                break
        if len(buf) < pos + length:
            return packets
        packets.append((buf[0] >> 4, bytes(buf[pos : pos + length])))
        del buf[: pos + length]


def count_pubacks(buf: bytearray) -> int:
    """Remove the complete packets at the head of ``buf`` and return how many were PUBACKs.

    Mosquitto answers a successful QoS 1 PUBLISH with a 4-byte PUBACK (no reason code):
    a run of those is counted with two slice comparisons instead of a loop per packet.
    """
    n = len(buf) // 4
    if n and buf[0 : 4 * n : 4] == b"\x40" * n and buf[1 : 4 * n : 4] == b"\x02" * n:
        del buf[: 4 * n]
        return n
    return sum(1 for kind, _ in split_packets(buf) if kind == PUBACK)


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
    ) -> None:
        self.window = window
        # PUBLISH properties: none, or an MQTT 5 Message Expiry Interval (0x02, four bytes), after
        # which the broker discards a message no session has taken (a load nobody must replay).
        self._properties = (
            b"\x00"
            if message_expiry_seconds is None
            else b"\x05\x02" + message_expiry_seconds.to_bytes(4, "big")
        )
        self.timeout = timeout
        self.sent = 0
        self.acknowledged = 0
        self._buf = bytearray()
        self._topics: dict[str, bytes] = {}  # topic -> its encoded name, length first
        self._sock = socket.create_connection((host, port), timeout=timeout)
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock.sendall(connect_packet(client_id, username, password))
        while True:
            self._receive()
            packets = split_packets(self._buf)
            connack = [body for kind, body in packets if kind == CONNACK]
            if connack:
                if len(connack[0]) < 2 or connack[0][1] != 0:
                    code = connack[0][1] if len(connack[0]) > 1 else -1
                    raise ConnectionError(
                        f"MQTT broker {host}:{port} refused the connection (reason code {code:#x}): "
                        "check the credentials and the client id"
                    )
                return

    def _receive(self) -> None:
        data = self._sock.recv(1 << 16)
        if not data:
            raise ConnectionError("the MQTT broker closed the connection")
        self._buf += data

    def _collect_acks(self, block: bool) -> None:
        if not block:
            ready, _, _ = select.select([self._sock], [], [], 0)
            if not ready:
                return
        self._receive()
        self.acknowledged += count_pubacks(self._buf)

    def publish_many(self, messages: Iterable[tuple[str, bytes]]) -> None:
        """Send every (topic, payload); block only while ``window`` messages await their PUBACK."""
        pending = bytearray()
        properties = self._properties
        for topic, payload in messages:
            if self.sent - self.acknowledged >= self.window:
                if pending:
                    self._sock.sendall(pending)
                    pending.clear()
                while self.sent - self.acknowledged >= self.window:
                    self._collect_acks(block=True)
            self.sent += 1
            # publish_packet, inlined with the topic's encoding memoised: the hot path.
            name = self._topics.get(topic)
            if name is None:
                if len(self._topics) > 100_000:
                    self._topics.clear()
                name = self._topics[topic] = _string(topic)
            size = len(name) + 2 + len(properties) + len(payload)
            pending += b"\x32" + (bytes((size,)) if size < 128 else _varint(size))
            pending += name
            pending += ((self.sent % 65535) + 1).to_bytes(2, "big") + properties
            pending += payload
        if pending:
            self._sock.sendall(pending)
        self._collect_acks(block=False)

    def wait_acknowledged(self) -> int:
        """Wait (up to the timeout) until every message sent is acknowledged; return the count."""
        deadline = time.monotonic() + self.timeout
        while self.acknowledged < self.sent and time.monotonic() < deadline:
            self._collect_acks(block=True)
        return self.acknowledged

    def close(self) -> None:
        try:
            self._sock.sendall(b"\xe0\x00")  # DISCONNECT
        finally:
            self._sock.close()


def publish_qos1(
    host: str,
    port: int,
    client_id: str,
    messages: Iterable[tuple[str, bytes]],
    window: int = 500,
    message_expiry_seconds: int | None = None,
) -> int:
    """Publish every (topic, payload) at QoS 1; return how many the broker acknowledged."""
    publisher = Qos1SocketPublisher(
        host, port, client_id, window, message_expiry_seconds=message_expiry_seconds
    )
    try:
        publisher.publish_many(messages)
        return publisher.wait_acknowledged()
    finally:
        publisher.close()
