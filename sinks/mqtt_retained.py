"""The latest value of each indicator series as a retained MQTT message, for light clients.

A city screen subscribes to ``<root>/<indicator>/<window>/<dim>=<value>/...`` and gets the
current value at once. Only the newest window of a series is published (a late correction
of an older window does not replace it). Best effort by design: Kafka's compacted topic and
InfluxDB hold the durable record; when the broker is away paho queues up to a bound and the
rest is counted as skipped, the next update republishes the series.
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from config.tls import client_tls_context
from schemas.indicator import IndicatorUpdate
from schemas.mqtt_principals import MqttLogin
from sinks.broker_queue import BROKER_FIGURES, broker_figure

log = logging.getLogger(__name__)
MAX_QUEUED = 10_000


def retained_topic(root: str, update: IndicatorUpdate) -> str:
    """The series' topic; MQTT wildcards and separators in values are replaced by ``_``."""
    parts = [update.indicator, update.window] + [f"{k}={v}" for k, v in sorted(update.dimensions.items())]
    return "/".join([root, *(p.replace("/", "_").replace("+", "_").replace("#", "_") for p in parts)])


class RetainedPublisher:
    """One MQTT connection, publishing at QoS 1 with the retain flag."""

    def __init__(
        self,
        host: str,
        port: int,
        root: str,
        client_id: str,
        login: MqttLogin | None,
        ca_file: Path | None = None,
    ) -> None:
        """``ca_file``: connect over TLS, trusting that CA."""
        self.root = root
        self.published = 0
        self.skipped = 0
        self.broker: dict[str, int] = {}  # Mosquitto's own figures (sinks/broker_queue.py)
        self._newest: dict[str, datetime] = {}
        self._refused: str | None = None
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        if login is not None:
            self._client.username_pw_set(login.username, login.password)
        else:
            log.warning(
                "no MQTT credential for the retained indicators: the broker will refuse them; set "
                "ZC_MQTT_SINK_PASSWORD (on the local stack, `zerocarbon stack up` generates it)"
            )
        if ca_file is not None:
            self._client.tls_set_context(client_tls_context(ca_file))
        self._client.on_connect = self._on_connect
        self._client.on_message = self._on_message
        self._client.max_queued_messages_set(MAX_QUEUED)
        self._client.reconnect_delay_set(1, 30)
        self._client.connect_async(host, port, keepalive=30)
        self._client.loop_start()

    @property
    def connected(self) -> bool:
        return self._client.is_connected()

    def _on_connect(self, _c: mqtt.Client, _u: object, _f: object, reason: ReasonCode, _p: object) -> None:
        # Said once, not at every reconnection attempt: paho keeps trying with backoff.
        refused = str(reason) if reason.is_failure else None
        if refused is not None and refused != self._refused:
            log.warning(
                "the MQTT broker refused the retained publisher (%s): check ZC_MQTT_SINK_USERNAME and "
                "ZC_MQTT_SINK_PASSWORD; indicators go on to InfluxDB meanwhile",
                refused,
            )
        self._refused = refused
        if refused is None:  # the broker's queue, watched on the same connection
            self._client.subscribe([(topic, 0) for topic in BROKER_FIGURES])

    def _on_message(self, _c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        figure = broker_figure(message.topic, bytes(message.payload))
        if figure is not None:
            self.broker[figure[0]] = figure[1]

    def offer(self, updates: dict[str, IndicatorUpdate]) -> None:
        """Publish each series' update if it is the newest window seen for that series."""
        for topic, update in updates.items():
            if update.window_start < self._newest.get(topic, update.window_start):
                continue
            self._newest[topic] = update.window_start
            info = self._client.publish(
                topic, update.model_dump_json(by_alias=True).encode(), qos=1, retain=True
            )
            if info.rc in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
                self.published += 1
            else:
                self.skipped += 1

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()
