"""The MQTT topic tree of devices: ``zc/<commune>/<family>/<device_id>``.

The commune (INSEE code) and the family in the topic let the broker's ACLs and the
bridge route without opening the payload; the payload is still authoritative and checked
downstream.
"""

from __future__ import annotations

from dataclasses import dataclass

ROOT = "zc"
DEVICE_FILTER = f"{ROOT}/+/+/+"


@dataclass(frozen=True, slots=True)
class DeviceTopic:
    commune: str
    family: str
    device_id: str


def device_topic(commune: str, family: str, device_id: str, root: str = ROOT) -> str:
    """The topic a device publishes on (``root`` other than ``zc`` only for tests and simulations)."""
    return f"{root}/{commune}/{family}/{device_id}"


def parse_device_topic(topic: str) -> DeviceTopic | None:
    """The parts of a device topic, or None if the topic is not in the tree."""
    parts = topic.split("/")
    if len(parts) != 4 or parts[0] != ROOT or not all(parts[1:]):
        return None
    return DeviceTopic(parts[1], parts[2], parts[3])
