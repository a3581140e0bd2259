"""Who may do what on the MQTT broker: the principals, their roles and the topics of each.

Mosquitto's dynamic-security plugin enforces these (``stack/dynamic_security.py`` sends them
to it); docs/security.md explains them. Everything not granted here is refused: the
default access denies publishing, subscribing and receiving to every client.

| principal | may |
|---|---|
| a device | publish on its own topic ``zc/<commune>/<family>/<device id>`` only |
| gateway | publish on any device topic ``zc/+/+/+`` (a LoRaWAN network server, the simulator) |
| bridge | subscribe to ``zc/+/+/+`` (or its shared form) and receive; publish nothing |
| sink | publish the retained indicators under its topic root; read Mosquitto's queue figures in ``$SYS`` |
| reader | subscribe to the retained indicators and receive; publish nothing |
| admin | the plugin's control topics and ``$SYS`` (the stack's readiness probe) |
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from schemas.device_topics import DEVICE_FILTER, device_topic

AclType = Literal[
    "publishClientSend", "publishClientReceive", "subscribePattern", "subscribeLiteral", "unsubscribePattern"
]

ADMIN, BRIDGE, SINK, READER, GATEWAY = "admin", "bridge", "sink", "reader", "gateway"
SERVICE_PRINCIPALS = (ADMIN, BRIDGE, SINK, READER, GATEWAY)
"""The service's own principals (one credential each); devices are principals too, one each."""

DEFAULT_USERNAMES = {name: f"zc-{name}" for name in SERVICE_PRINCIPALS}

SANDBOX_ROOT = "zc-sandbox"
"""Topics no bridge reads: on the local stack only, the gateway may publish and subscribe
under ``zc-sandbox/#`` (simulations, benchmarks and tests that must not reach Kafka)."""

CONTROL_TOPIC = "$CONTROL/dynamic-security/v1"
CONTROL_RESPONSE_TOPIC = f"{CONTROL_TOPIC}/response"

DEFAULT_ACL_ACCESS = {
    "publishClientSend": False,
    "publishClientReceive": False,
    "subscribe": False,
    "unsubscribe": True,
}
"""What a client may do that no role of its grants: nothing but unsubscribing."""


@dataclass(frozen=True, slots=True)
class MqttLogin:
    """A user name and its password; the password never shows in a repr or a log line."""

    username: str
    password: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class TopicAcl:
    """One rule of a role, as the dynamic-security plugin takes it."""

    acltype: AclType
    topic: str
    allow: bool = True

    def as_dynsec(self) -> dict[str, Any]:
        return {"acltype": self.acltype, "topic": self.topic, "allow": self.allow, "priority": 0}


@dataclass(frozen=True, slots=True)
class Role:
    name: str
    acls: tuple[TopicAcl, ...]


def _send(topic: str) -> TopicAcl:
    return TopicAcl("publishClientSend", topic)


def _read(topic_filter: str) -> tuple[TopicAcl, TopicAcl]:
    """Subscribe to ``topic_filter`` (or narrower) and receive what it matches."""
    return TopicAcl("subscribePattern", topic_filter), TopicAcl("publishClientReceive", topic_filter)


ADMIN_ROLE = Role(
    "zc-admin",
    (
        _send("$CONTROL/dynamic-security/#"),
        *_read("$CONTROL/dynamic-security/#"),
        *_read("$SYS/#"),
    ),
)
BRIDGE_ROLE = Role(
    "zc-bridge",
    (*_read(DEVICE_FILTER), TopicAcl("subscribePattern", f"$share/+/{DEVICE_FILTER}")),
)
GATEWAY_ROLE = Role("zc-gateway", (_send(DEVICE_FILTER),))
SANDBOX_ROLE = Role("zc-sandbox", (_send(f"{SANDBOX_ROOT}/#"), *_read(f"{SANDBOX_ROOT}/#")))


def indicator_publisher_role(root: str) -> Role:
    """The sink's: publish (retained) under the indicators' topic root, nothing else."""
    return Role("zc-indicator-publisher", (_send(f"{root}/#"),))


BROKER_QUEUE_TOPICS = (
    "$SYS/broker/store/messages/count",
    "$SYS/broker/store/messages/bytes",
    "$SYS/broker/publish/messages/dropped",
)
BROKER_WATCHER_ROLE = Role(
    "zc-broker-watcher", tuple(acl for topic in BROKER_QUEUE_TOPICS for acl in _read(topic))
)
"""The sink's too: the broker's stored messages and drops (sinks/broker_queue.py), no more of $SYS."""


def indicator_reader_role(root: str) -> Role:
    """A reader's (a city screen): subscribe to the retained indicators and receive them."""
    return Role("zc-indicator-reader", _read(f"{root}/#"))


def service_roles(indicator_root: str, sandbox: bool) -> dict[str, tuple[Role, ...]]:
    """Each service principal's roles; ``sandbox``: the gateway may use ``zc-sandbox/#`` too."""
    return {
        ADMIN: (ADMIN_ROLE,),
        BRIDGE: (BRIDGE_ROLE,),
        SINK: (indicator_publisher_role(indicator_root), BROKER_WATCHER_ROLE),
        READER: (indicator_reader_role(indicator_root),),
        GATEWAY: (GATEWAY_ROLE, SANDBOX_ROLE) if sandbox else (GATEWAY_ROLE,),
    }


DEVICE_ROLE_PREFIX = "zc-device:"


def device_role(commune: str, family: str, device_id: str) -> Role:
    """A device's own role: publish on its registry row's topic, nothing else."""
    return Role(f"{DEVICE_ROLE_PREFIX}{device_id}", (_send(device_topic(commune, family, device_id)),))


def topic_level_problem(value: str, what: str) -> str | None:
    """Why ``value`` cannot be one level of a topic (and a user name), or None if it can."""
    if not value:
        return f"the {what} is empty"
    if any(c in value for c in "/+#\x00") or value.strip() != value or not value.isprintable():
        return (
            f"the {what} {value!r} must be one topic level: no '/', '+', '#', "
            "control character or surrounding space"
        )
    if len(value.encode()) > 200:
        return f"the {what} {value!r} is longer than 200 bytes"
    return None
