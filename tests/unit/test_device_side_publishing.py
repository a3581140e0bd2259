"""The device side without a broker: the offline buffer, pacing, and the raw-socket publisher
against a scripted broker (its packets are tested in test_mqtt_packets.py)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from schemas.mqtt_packets import CONNECT, MQTT_5, Publish, decode_connack, split_packets
from sensors.device_client import OfflineBuffer
from sensors.pacing import paced
from sensors.qos1_socket_publisher import Qos1SocketPublisher


def test_the_offline_buffer_keeps_the_newest_and_counts_what_it_dropped() -> None:
    buffer = OfflineBuffer(capacity=3)
    for k in range(5):
        buffer.append(("t", str(k).encode()))
    assert buffer.dropped == 2
    assert [p for _, p in buffer.take_all()] == [b"2", b"3", b"4"]
    assert len(buffer) == 0


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_pacing_at_a_speed_releases_items_at_their_time() -> None:
    clock = FakeClock()
    items = [0.0, 0.0, 10.0, 20.0]
    released = []
    for batch in paced(items, float, speed=10.0, monotonic=clock.monotonic, sleep=clock.sleep):
        released.append((clock.now, batch))
    assert released == [(0.0, [0.0, 0.0]), (1.0, [10.0]), (2.0, [20.0])]


def test_pacing_at_a_rate_caps_items_per_second_and_stops_at_the_deadline() -> None:
    clock = FakeClock()
    batches = list(
        paced(range(1000), float, rate=100.0, duration=2.0, monotonic=clock.monotonic, sleep=clock.sleep)
    )
    sent = sum(len(b) for b in batches)
    assert sent == 200
    assert clock.now == pytest.approx(1.99)


def test_unpaced_items_come_in_full_batches() -> None:
    batches = list(paced(range(2500), float, batch_max=1000))
    assert [len(b) for b in batches] == [1000, 1000, 500]


class ScriptedBroker:
    """Accepts one MQTT 5 client on a local port: answers its CONNECT with ``connack`` and each
    PUBLISH with a PUBACK, 4 or 5 bytes long (reason 0x10) in turn, sent a byte at a time now
    and then so that the client's reads cut packets anywhere."""

    def __init__(self, connack: bytes = b"\x20\x03\x00\x00\x00") -> None:
        self.connack = connack
        self.connect = b""
        self.received: list[Publish] = []
        self._server = socket.create_server(("127.0.0.1", 0))
        self._server.settimeout(10)
        self.port = self._server.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        conn, _ = self._server.accept()
        conn.settimeout(10)
        with conn:
            rest = b""
            acks = 0
            while data := conn.recv(4096):
                data = rest + data
                publishes, others, used = split_packets(data, MQTT_5)
                rest = data[used:]
                for packet in others:
                    if packet.kind == CONNECT:
                        self.connect = packet.body
                        conn.sendall(self.connack)
                for publish in publishes:
                    self.received.append(publish)
                    pid = publish.packet_id.to_bytes(2, "big")
                    ack = b"\x40\x02" + pid if acks % 2 else b"\x40\x03" + pid + b"\x10"
                    if acks % 7 == 3:
                        for byte in ack:
                            conn.sendall(bytes((byte,)))
                    else:
                        conn.sendall(ack)
                    acks += 1

    def close(self) -> None:
        self._server.close()
        self._thread.join(10)


@pytest.fixture
def broker() -> Iterator[ScriptedBroker]:
    scripted = ScriptedBroker()
    yield scripted
    scripted.close()


def test_the_socket_publisher_sends_every_message_and_counts_every_puback(broker: ScriptedBroker) -> None:
    messages = [(f"zc/17300/energy/m{k % 5}", b'{"k":%d}' % k) for k in range(300)]
    publisher = Qos1SocketPublisher(
        "127.0.0.1", broker.port, "dev-1", window=7, username="meter", password="secret"
    )
    try:
        publisher.publish_many(messages[:100])
        publisher.publish_many(messages[100:])
        assert publisher.wait_acknowledged() == publisher.sent == 300
    finally:
        publisher.close()
    assert broker.connect.endswith(b"\x00\x05dev-1\x00\x05meter\x00\x06secret")
    assert [(p.topic, p.payload) for p in broker.received] == messages
    assert all(p.packet_id for p in broker.received)  # QoS 1: a packet id, never 0


def test_the_socket_publisher_says_why_the_broker_refused_it() -> None:
    refusing = ScriptedBroker(connack=b"\x20\x03\x00\x87\x00")  # 0x87: not authorized
    assert decode_connack(refusing.connack[2:], MQTT_5).refused
    try:
        with pytest.raises(ConnectionError, match=r"refused the connection \(reason code 0x87\)"):
            Qos1SocketPublisher("127.0.0.1", refusing.port, "dev-1", timeout=10)
    finally:
        refusing.close()
