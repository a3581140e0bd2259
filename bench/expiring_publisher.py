"""The suite's MQTT publisher: ``sensors/qos1_socket_publisher.py`` with a message expiry.

Every persistent session subscribed to ``zc/+/+/+`` while offline (the service's own bridge,
a developer's) gets every message the suite publishes queued for it by Mosquitto; hundreds
of thousands of benchmark readings would then reach Kafka whenever that bridge next starts.
Each PUBLISH here carries an MQTT 5 Message Expiry Interval (``EXPIRY_SECONDS``), so Mosquitto
discards what nobody took within that delay. A bridge connected meanwhile gets every message
(its backlogs drain in well under the delay); it decodes one property more per message.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

from sensors.qos1_socket_publisher import Qos1SocketPublisher, _string, _varint

EXPIRY_SECONDS = 300
# Property length 5: Message Expiry Interval (0x02), four bytes.
_PROPERTIES = b"\x05\x02" + struct.pack(">I", EXPIRY_SECONDS)


class ExpiringQos1Publisher(Qos1SocketPublisher):
    """QoS 1 publishing with at most ``window`` messages in flight, each expiring if unclaimed."""

    def publish_many(self, messages: Iterable[tuple[str, bytes]]) -> None:
        """Send every (topic, payload); block only while ``window`` messages await their PUBACK."""
        pending = bytearray()
        topics = self._topics
        for topic, payload in messages:
            if self.sent - self.acknowledged >= self.window:
                if pending:
                    self._sock.sendall(pending)
                    pending.clear()
                while self.sent - self.acknowledged >= self.window:
                    self._collect_acks(block=True)
            self.sent += 1
            name = topics.get(topic)
            if name is None:
                if len(topics) > 100_000:
                    topics.clear()
                name = topics[topic] = _string(topic)
            size = len(name) + 2 + len(_PROPERTIES) + len(payload)
            pending += b"\x32" + _varint(size)
            pending += name
            pending += ((self.sent % 65535) + 1).to_bytes(2, "big")
            pending += _PROPERTIES
            pending += payload
        if pending:
            self._sock.sendall(pending)
        self._collect_acks(block=False)


def publish_expiring(
    host: str, port: int, client_id: str, messages: Iterable[tuple[str, bytes]], window: int = 500
) -> int:
    """Publish every (topic, payload) at QoS 1 with the expiry; how many the broker acknowledged."""
    publisher = ExpiringQos1Publisher(host, port, client_id, window)
    try:
        publisher.publish_many(messages)
        return publisher.wait_acknowledged()
    finally:
        publisher.close()
