"""What Mosquitto holds for its clients, read from its $SYS topics by the sink.

A bridge that is away (stopped, or holding its socket while Kafka is away) leaves the
readings devices send queued in Mosquitto for its persistent session, up to
``max_queued_messages`` and ``max_queued_bytes``; beyond, Mosquitto drops what devices were
told was delivered. The sink runs whatever the bridge does, on its own MQTT connection, so it
is the one that watches: the broker's stored messages and bytes (the queued readings, plus
the retained indicators) and the publishes it dropped since it started, every
``sys_interval`` (10 s by default). Prometheus alerts on them (stack/alert_rules.py).
"""

from __future__ import annotations

from schemas.mqtt_principals import BROKER_QUEUE_TOPICS

BROKER_FIGURES = dict(
    zip(BROKER_QUEUE_TOPICS, ("stored_messages", "stored_bytes", "dropped_messages"), strict=True)
)
"""Mosquitto's $SYS topic -> the figure the sink keeps (docs/metrics.md)."""


def broker_figure(topic: str, payload: bytes) -> tuple[str, int] | None:
    """The figure a $SYS message carries; None for another topic or a payload not a count."""
    name = BROKER_FIGURES.get(topic)
    if name is None:
        return None
    try:
        value = int(payload.decode("ascii").strip())
    except (UnicodeDecodeError, ValueError):
        return None
    return (name, value) if value >= 0 else None
