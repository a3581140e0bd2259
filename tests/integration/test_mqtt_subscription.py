"""The bridge's own MQTT session against the real Mosquitto: what is not acknowledged comes back,
what is acknowledged does not, in order and verbatim, for MQTT 5 and 3.1.1."""

from __future__ import annotations

import asyncio
import uuid

import paho.mqtt.publish as mqtt_publish
import pytest

from bridge.mqtt_sessions import forget_session
from bridge.mqtt_subscriber import QoS1Subscription, SubscriptionConfig
from bridge.mqtt_wire import MQTT_5, MQTT_311, Publish
from zerocarbon.settings import Settings


class _Session:
    """One process's view of the persistent session: start, collect, acknowledge, stop."""

    def __init__(self, settings: Settings, client_id: str, topic_filter: str, version: int) -> None:
        self.received: list[tuple[Publish, int]] = []
        config = SubscriptionConfig(
            host=settings.mqtt_host, port=settings.mqtt_port, client_id=client_id,
            filters=[topic_filter], version=version, keepalive=10,
        )  # fmt: skip
        self.mqtt = QoS1Subscription(config, lambda msgs, gen: self.received.extend((m, gen) for m in msgs))
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> _Session:
        self._task = asyncio.create_task(self.mqtt.run(self._stop))
        await asyncio.wait_for(self.mqtt.subscribed.wait(), 15)
        return self

    async def __aexit__(self, *_exc: object) -> None:
        self._stop.set()
        assert self._task is not None
        await self._task

    async def wait_for(self, count: int, timeout: float = 15) -> list[Publish]:
        deadline = asyncio.get_running_loop().time() + timeout
        while len(self.received) < count and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        return [m for m, _ in self.received]


@pytest.mark.parametrize("version", [MQTT_5, MQTT_311])
async def test_unacknowledged_messages_come_back_in_order_and_acknowledged_ones_do_not(
    settings: Settings, version: int
) -> None:
    run = uuid.uuid4().hex[:8]
    client_id, topic_filter = f"test-sub-{run}", f"zc-test/{run}/+"
    payloads = [f'{{"n":{k}}}'.encode() if k % 7 else bytes([0xFF, k, 0]) for k in range(50)]
    try:
        async with _Session(settings, client_id, topic_filter, version) as first:
            assert not first.mqtt.session_present
            await asyncio.to_thread(
                mqtt_publish.multiple,
                [
                    {"topic": f"zc-test/{run}/d{k % 3}", "payload": p, "qos": 1}
                    for k, p in enumerate(payloads)
                ],
                hostname=settings.mqtt_host,
                port=settings.mqtt_port,
            )
            got = await first.wait_for(50)
            assert [m.payload for m in got] == payloads
            assert [m.topic for m in got] == [f"zc-test/{run}/d{k % 3}" for k in range(50)]
            generation = first.received[0][1]
            assert first.mqtt.ack([m.packet_id for m in got[:20]], generation)
            assert not first.mqtt.ack([m.packet_id for m in got[20:]], generation + 1)  # not this connection
            await asyncio.sleep(0.3)  # let the acknowledgements reach the broker before we leave

        async with _Session(settings, client_id, topic_filter, version) as second:
            assert second.mqtt.session_present
            again = await second.wait_for(30)
            assert [m.payload for m in again] == payloads[20:]
            assert second.mqtt.ack([m.packet_id for m in again], second.received[0][1])
            await asyncio.sleep(0.3)

        async with _Session(settings, client_id, topic_filter, version) as third:
            await asyncio.sleep(1.0)
            assert third.received == []
    finally:
        await asyncio.to_thread(forget_session, settings.mqtt_host, settings.mqtt_port, client_id)
