"""The two ways the simulator and the replay publish, behind one small interface.

``DeviceClient`` (paho) is the embeddable client, resilient but near 6 000 messages/s per
process; ``Qos1SocketPublisher`` writes pre-encoded packets on a raw socket and passes
50 000/s, for load. ``auto`` picks paho for gentle rates.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from sensors.device_client import DeviceClient
from sensors.qos1_socket_publisher import Qos1SocketPublisher

PAHO_MAX_RATE = 2_000.0
"""Above this rate ``auto`` uses the raw-socket publisher."""
PUBLISHERS = ("auto", "paho", "socket")


class Publisher(Protocol):
    sent: int
    acknowledged: int
    refused: int  # answered with a refusal (MQTT 5 reason >= 0x80): the broker dropped them

    def publish_many(self, messages: Iterable[tuple[str, bytes]]) -> None: ...

    def wait_acknowledged(self) -> int: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class MqttTarget:
    """Where to publish, and as whom."""

    host: str
    port: int
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    client_id: str = field(default_factory=lambda: f"zc-sensors-{uuid.uuid4().hex[:8]}")
    ca_file: Path | None = None  # TLS, trusting this CA


def open_publisher(kind: str, rate: float | None, target: MqttTarget) -> Publisher:
    """A connected publisher of ``kind`` (auto: paho up to PAHO_MAX_RATE messages/s, else socket)."""
    if kind == "auto":
        kind = "paho" if rate is not None and rate <= PAHO_MAX_RATE else "socket"
    if kind == "paho":
        client = DeviceClient(
            target.host,
            target.port,
            target.client_id,
            username=target.username,
            password=target.password,
            max_inflight=1000,
            ca_file=target.ca_file,
        )
        client.connect()
        return client
    if kind == "socket":
        return Qos1SocketPublisher(
            target.host,
            target.port,
            target.client_id,
            username=target.username,
            password=target.password,
            ca_file=target.ca_file,
        )
    raise ValueError(f"unknown publisher {kind!r}: use one of {PUBLISHERS}")
