"""The device side without a broker: the offline buffer, pacing, and the raw MQTT packets."""

from __future__ import annotations

import pytest

from sensors.device_client import OfflineBuffer
from sensors.pacing import paced
from sensors.qos1_socket_publisher import connect_packet, count_pubacks, publish_packet, split_packets


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


def test_pubacks_are_counted_in_runs_and_in_mixed_packets() -> None:
    run = bytearray(b"\x40\x02\x00\x01" * 3 + b"\x40\x02")  # three PUBACKs and half of a fourth
    assert count_pubacks(run) == 3 and run == bytearray(b"\x40\x02")
    mixed = bytearray(b"\xd0\x00" + b"\x40\x03\x00\x02\x10")  # PINGRESP, PUBACK with a reason code
    assert count_pubacks(mixed) == 1 and mixed == bytearray()


def test_packets_carry_credentials_topic_and_packet_id() -> None:
    packet = connect_packet("dev-1", "meter", "secret")
    assert packet[0] == 0x10 and packet[9] == 0x02 | 0x80 | 0x40  # clean start, user name, password
    assert packet.endswith(b"\x00\x05meter\x00\x06secret")
    buf = bytearray(publish_packet(b"zc/17300/energy/m1", 7, b"{}"))
    [(kind, body)] = split_packets(buf)
    assert kind == 3 and body == b"\x00\x12zc/17300/energy/m1\x00\x07\x00{}"
