"""Forward MQTT messages to a Kafka topic, acknowledging each to MQTT only once Kafka has it.

The MQTT session is persistent (MQTT 5 clean start off, with a session expiry) and the
subscription is QoS 1 with manual acknowledgements: if the bridge dies between the two
brokers, Mosquitto redelivers what was not acknowledged. Kafka gets an idempotent producer
with acks=all, keyed by device id (the last level of the MQTT topic).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import paho.mqtt.client as mqtt
from aiokafka import AIOKafkaProducer
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

log = logging.getLogger(__name__)

SESSION_EXPIRY_SECONDS = 7 * 24 * 3600


@dataclass
class ForwardCounters:
    """What came in and what went out, so that nothing can vanish unnoticed."""

    received: int = 0
    forwarded: int = 0

    @property
    def in_flight(self) -> int:
        return self.received - self.forwarded


def device_key(mqtt_topic: str) -> bytes:
    """The Kafka key of a message: the device id, last level of its MQTT topic."""
    return mqtt_topic.rsplit("/", 1)[-1].encode()


class MqttToKafkaForwarder:
    """One bridge process: a paho network thread feeding an asyncio Kafka producer."""

    def __init__(
        self,
        *,
        mqtt_host: str,
        mqtt_port: int,
        topic_filter: str,
        kafka_bootstrap: str,
        kafka_topic: str,
        client_id: str,
    ) -> None:
        self.mqtt_host, self.mqtt_port = mqtt_host, mqtt_port
        self.topic_filter = topic_filter
        self.kafka_bootstrap, self.kafka_topic = kafka_bootstrap, kafka_topic
        self.client_id = client_id
        self.counters = ForwardCounters()
        self._queue: asyncio.Queue[mqtt.MQTTMessage] = asyncio.Queue()
        self._subscribed = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> ForwardCounters:
        """Forward until ``stop`` is set, then close both connections cleanly."""
        loop = asyncio.get_running_loop()
        producer = AIOKafkaProducer(
            bootstrap_servers=self.kafka_bootstrap, acks="all", enable_idempotence=True
        )
        await producer.start()
        client = self._mqtt_client(loop)
        try:
            client.loop_start()
            forwarding = asyncio.create_task(self._forward(producer, client))
            await stop.wait()
            forwarding.cancel()
        finally:
            client.disconnect()
            client.loop_stop()
            await producer.stop()
        log.info("bridge stopped: %s", self.counters)
        return self.counters

    async def wait_subscribed(self, timeout: float) -> None:
        await asyncio.wait_for(self._subscribed.wait(), timeout)

    def _mqtt_client(self, loop: asyncio.AbstractEventLoop) -> mqtt.Client:
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=True,
        )

        def on_connect(c: mqtt.Client, _u: object, _f: object, rc: object, _p: object) -> None:
            log.info("connected to MQTT %s:%s (%s)", self.mqtt_host, self.mqtt_port, rc)
            c.subscribe(self.topic_filter, qos=1)

        def on_subscribe(*_args: object) -> None:
            log.info("subscribed to %s at QoS 1", self.topic_filter)
            loop.call_soon_threadsafe(self._subscribed.set)

        def on_message(_c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
            loop.call_soon_threadsafe(self._queue.put_nowait, msg)

        client.on_connect = on_connect
        client.on_subscribe = on_subscribe
        client.on_message = on_message
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = SESSION_EXPIRY_SECONDS
        client.connect(self.mqtt_host, self.mqtt_port, keepalive=30, clean_start=False, properties=props)
        return client

    async def _forward(self, producer: AIOKafkaProducer, client: mqtt.Client) -> None:
        while True:
            msg = await self._queue.get()
            self.counters.received += 1
            await producer.send_and_wait(self.kafka_topic, msg.payload, key=device_key(msg.topic))
            # Only now may Mosquitto forget the message.
            client.ack(msg.mid, msg.qos)
            self.counters.forwarded += 1
