"""The suite's MQTT publisher: ``sensors/qos1_socket_publisher.py`` with a message expiry.

Every persistent session subscribed to ``zc/+/+/+`` while offline (the service's own bridge,
a developer's) gets every message the suite publishes queued for it by Mosquitto; hundreds
of thousands of benchmark readings would then reach Kafka whenever that bridge next starts.
Each PUBLISH here carries an MQTT 5 Message Expiry Interval (``EXPIRY_SECONDS``), so Mosquitto
discards what nobody took within that delay. A bridge connected meanwhile gets every message
(its backlogs drain in well under the delay); it skips one property more per message.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from schemas.mqtt_principals import MqttLogin
from sensors.qos1_socket_publisher import publish_qos1

EXPIRY_SECONDS = 300


def publish_expiring(
    host: str,
    port: int,
    client_id: str,
    messages: Iterable[tuple[str, bytes]],
    window: int = 500,
    login: MqttLogin | None = None,
    ca_file: Path | None = None,
) -> int:
    """Publish every (topic, payload) at QoS 1 with the expiry as ``login``; how many the broker
    accepted."""
    return publish_qos1(
        host,
        port,
        client_id,
        messages,
        window,
        message_expiry_seconds=EXPIRY_SECONDS,
        login=login,
        ca_file=ca_file,
    )
