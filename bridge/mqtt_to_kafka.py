"""Forward MQTT messages to Kafka without loss, packed in batch envelopes.

- The MQTT session is persistent (MQTT 5 clean start off, session expiry) and the
  subscription QoS 1 with manual acknowledgements: a message is acknowledged to Mosquitto
  only after Kafka has confirmed the record that carries it (idempotent producer,
  acks=all). If the bridge dies in between, Mosquitto redelivers; downstream de-duplicates
  by event id.
- Readings arriving within ``linger`` are packed into one record per (raw topic,
  partition), partitioned by the commune of the topic with Kafka's own partitioner
  (schemas/partition_key.py), so a device's readings keep their order, a commune's
  readings meet in one partition, and faust sees few, large records.
- Memory is bounded: the MQTT 5 Receive Maximum asks Mosquitto to send no more messages
  than that before we acknowledge, and since Mosquitto 2.0 was seen sending a resumed
  session's whole backlog anyway, the bridge also stops reading its socket when it holds
  that many (TCP then holds the broker back). When Kafka is slow we stop acknowledging and
  the broker keeps the rest.
- MQTT is read on the asyncio loop by bridge/mqtt_subscriber.py, not paho's network thread
  (most of the bridge's time, bench/README.md): one pass per socket read, one write per
  batch of acknowledgements.
- Nothing is dropped: a message whose topic is outside the tree goes to the dead-letter
  topic with the reason, verbatim; so do the readings of a record Kafka refuses for what it
  is (bridge/kafka_refusals.py), while every other Kafka error is retried, acknowledgements
  held. If the loop writing to Kafka fails, the bridge stops with that error (a supervisor
  restarts it) rather than keep a session that acknowledges nothing.
- A message the broker delivers again after a reconnection (its acknowledgement was lost
  with the connection) is acknowledged, not sent to Kafka a second time, when this process
  forwarded it (bridge/redeliveries.py).
- While reading is held, the keepalive goes on (PINGREQs still sent) and the link is not
  judged on the PINGRESPs it cannot read: a bridge waiting for Kafka keeps its connection.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer

from bridge.bridge_metrics import BRIDGE_METRICS
from bridge.kafka_refusals import breaks_the_sequence, refused_readings, refuses_the_record
from bridge.mqtt_subscriber import QoS1Subscription, SubscriptionConfig
from bridge.redeliveries import Redeliveries
from bridge.renewable_producer import Record, RenewableProducer
from config.kafka_access import KafkaAccess
from config.patient_producer import patient_producer
from config.prometheus_metrics import MetricsEndpoint, metrics_registry, metrics_server
from config.status_files import write_status
from schemas.batch_envelope import CONTENT_TYPE_HEADER, FRAMES_CONTENT_TYPE, encode_frames
from schemas.catalogue import DEAD_LETTER_MAX_BYTES, DEAD_LETTER_TOPIC, raw_topic
from schemas.dead_letter import FieldProblem, Origin
from schemas.dead_letters import dead_letter, fitting_json
from schemas.device_topics import DEVICE_FILTER, parse_device_topic
from schemas.families import FAMILIES
from schemas.mqtt_packets import MQTT_5, MQTT_311, Publish
from schemas.mqtt_principals import MqttLogin
from schemas.partition_key import commune_partition

log = logging.getLogger(__name__)

# A record for the producer: topic, partition, key, value, headers.


@dataclass(frozen=True)
class BridgeConfig:
    mqtt_host: str
    mqtt_port: int
    kafka: KafkaAccess
    client_id: str
    status_file: Path
    shared_group: str | None = None
    mqtt_version: int = 5
    session_expiry_seconds: int = 7 * 24 * 3600
    receive_maximum: int = 20_000
    linger_seconds: float = 0.02
    max_record_bytes: int = 512 * 1024
    login: MqttLogin | None = None  # the bridge principal's: subscribes to zc/+/+/+ and nothing else
    mqtt_ca_file: Path | None = None  # MQTT over TLS, trusting this CA
    metrics: MetricsEndpoint = field(default_factory=MetricsEndpoint)  # bridge/bridge_metrics.py

    def subscriptions(self) -> list[str]:
        filters = [DEVICE_FILTER]
        if self.shared_group:
            return [f"$share/{self.shared_group}/{f}" for f in filters]
        return filters


@dataclass
class BridgeCounters:
    """received = forwarded + dead_lettered + undeliverable + in flight."""

    received: collections.Counter[str] = field(default_factory=collections.Counter)
    forwarded: collections.Counter[str] = field(default_factory=collections.Counter)
    dead_lettered: int = 0
    records: int = 0
    # Dead letters Kafka refused in turn (larger than the dead-letter topic takes): lost, said so.
    undeliverable: int = 0
    # Redeliveries of messages already in Kafka, acknowledged and not sent again (not received).
    redelivered: int = 0
    # Records confirmed after an earlier record of their partition failed (out of order).
    overtaken: int = 0
    # Sends Kafka did not confirm (each retried, or the record refused for what it is).
    send_failures: int = 0

    def in_flight(self) -> int:
        return (
            sum(self.received.values())
            - sum(self.forwarded.values())
            - self.dead_lettered
            - self.undeliverable
        )


@dataclass(slots=True)
class _Routed:
    kafka_topic: str
    key: bytes
    family: str
    slot: tuple[str, int]  # (Kafka topic, partition) of a reading


# Routes remembered per MQTT topic (a device publishes on one topic): bounded, then started again.
_ROUTES_KEPT = 200_000


class MqttToKafkaBridge:
    """One bridge process: one asyncio loop reads MQTT, packs readings and writes to Kafka."""

    def __init__(self, config: BridgeConfig) -> None:
        self.config = config
        self.counters = BridgeCounters()
        # What each socket read delivered, with its connection generation, in arrival order.
        self._inbox: collections.deque[tuple[int, list[Publish]]] = collections.deque()
        self._inbox_messages = 0
        # Messages read and not yet acknowledged (inbox and the batch Kafka is confirming):
        # reading stops at the Receive Maximum and resumes at half of it.
        self._held = 0
        self._reading_held = False
        self._wake = asyncio.Event()
        self._kafka_ready = False
        self._metrics_port: int | None = None
        self._partitions: dict[str, int] = {}
        self._routes: dict[str, _Routed | None] = {}
        self._redeliveries = Redeliveries(keep=config.receive_maximum)
        self._mqtt = QoS1Subscription(
            SubscriptionConfig(
                host=config.mqtt_host,
                port=config.mqtt_port,
                client_id=config.client_id,
                filters=config.subscriptions(),
                version=MQTT_5 if config.mqtt_version == 5 else MQTT_311,
                session_expiry_seconds=config.session_expiry_seconds,
                receive_maximum=config.receive_maximum,
                login=config.login,
                ca_file=config.mqtt_ca_file,
            ),
            self._received,
        )

    @property
    def held_messages(self) -> int:
        """Messages read from MQTT and not yet acknowledged: what this process holds."""
        return self._held

    # -- routing ---------------------------------------------------------------------
    def route(self, topic: str) -> _Routed | None:
        """Where an MQTT message goes in Kafka, or None if its topic is not ours."""
        try:
            return self._routes[topic]
        except KeyError:
            if len(self._routes) >= _ROUTES_KEPT:
                self._routes.clear()
            routed = self._routes[topic] = self._route(topic)
            return routed

    def _route(self, topic: str) -> _Routed | None:
        parsed = parse_device_topic(topic)
        if parsed is None or parsed.family not in FAMILIES:
            return None
        kafka_topic, key = raw_topic(parsed.family), parsed.commune.encode()
        return _Routed(kafka_topic, key, parsed.family, (kafka_topic, self.partition(kafka_topic, key)))

    def partition(self, kafka_topic: str, key: bytes) -> int:
        """Kafka's default partitioner (murmur2) on the commune, so partners and the bridge agree."""
        return commune_partition(key.decode(), self._partitions[kafka_topic])

    # -- lifecycle -------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> BridgeCounters:
        """Forward until ``stop`` is set, then close both connections cleanly."""
        async with metrics_server(
            metrics_registry(BRIDGE_METRICS, self.status), self.config.metrics, self.readiness
        ) as port:
            self._metrics_port = port
            return await self._run(stop)

    def readiness(self) -> dict[str, bool]:
        """``/ready``: connected to Mosquitto, and Kafka's producer started."""
        return {"mqtt_connected": bool(self._mqtt.connected), "kafka_ready": bool(self._kafka_ready)}

    async def _run(self, stop: asyncio.Event) -> BridgeCounters:
        producer = RenewableProducer(self._new_producer)
        await producer.start()
        for family in FAMILIES:
            await self._learn_partitions(producer, raw_topic(family))
        await self._learn_partitions(producer, DEAD_LETTER_TOPIC)
        self._kafka_ready = True
        mqtt_stop = asyncio.Event()
        session = asyncio.create_task(self._mqtt.run(mqtt_stop))
        status_task = asyncio.create_task(self._report_status())
        pump = asyncio.create_task(self._pump(producer))
        stopping = asyncio.create_task(stop.wait())
        died: BaseException | None = None
        try:
            # The pump only ends by failing: a bug of ours, or an error no retry passes. Half a
            # bridge would keep its session and acknowledge nothing while saying it is ready.
            await asyncio.wait({stopping, pump}, return_when=asyncio.FIRST_COMPLETED)
            if pump.done() and not pump.cancelled():
                died = pump.exception()
        finally:
            stopping.cancel()
            pump.cancel()
            status_task.cancel()
            mqtt_stop.set()
            await session
            await producer.stop()
            self._kafka_ready = False
            self._write_status()
        if died is not None:
            log.critical(
                "the bridge's Kafka loop died (%r): stopping; the readings it had not had confirmed "
                "were not acknowledged, and Mosquitto delivers them again at the next start",
                died,
            )
            raise died
        log.info("bridge stopped: %s", self.counters)
        return self.counters

    def _new_producer(self) -> AIOKafkaProducer:
        return patient_producer(
            **self.config.kafka.client_options(),
            linger_ms=5,
            max_batch_size=1024 * 1024,
            max_request_size=DEAD_LETTER_MAX_BYTES,
            client_id=self.config.client_id,
        )

    async def wait_subscribed(self, timeout: float) -> None:
        await asyncio.wait_for(self._mqtt.subscribed.wait(), timeout)

    async def _learn_partitions(self, producer: RenewableProducer, topic: str) -> None:
        partitions = await producer.partitions_for(topic)
        self._partitions[topic] = len(partitions)

    # -- MQTT side -------------------------------------------------------------------------
    def _received(self, messages: list[Publish], generation: int) -> None:
        if not self._inbox:
            self._wake.set()
        self._inbox.append((generation, messages))
        self._inbox_messages += len(messages)
        self._held += len(messages)
        if self._held >= self.config.receive_maximum and not self._reading_held:
            self._reading_held = True
            self._mqtt.hold(True)

    # -- Kafka side ------------------------------------------------------------------------
    async def _pump(self, producer: RenewableProducer) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await asyncio.sleep(self.config.linger_seconds)
            reads = list(self._inbox)
            self._inbox.clear()
            self._inbox_messages = 0
            batch = [msg for _, messages in reads for msg in messages]
            if not batch:
                continue
            # What the broker delivers again after a reconnection, already in Kafka, is only
            # acknowledged (bridge/redeliveries.py).
            new = [msg for gen, messages in reads for msg in self._redeliveries.new_messages(gen, messages)]
            self.counters.redelivered = self._redeliveries.skipped
            if new:
                await self._forward(producer, new)
            # PUBACKs in the order the PUBLISHes arrived (MQTT 5, 4.6), once Kafka has them all.
            generation = reads[0][0]
            ids: list[int] = []
            for gen, messages in reads:
                if gen != generation:
                    self._mqtt.ack(ids, generation)
                    generation, ids = gen, []
                ids.extend([msg.packet_id for msg in messages])
            self._mqtt.ack(ids, generation)
            self._held -= len(batch)
            if self._reading_held and self._held < self.config.receive_maximum // 2:
                self._reading_held = False
                self._mqtt.hold(False)

    async def _forward(self, producer: RenewableProducer, batch: list[Publish]) -> None:
        """Send the batch to Kafka and return only once every record is confirmed."""
        groups: dict[tuple[str, int], list[tuple[str, bytes]]] = collections.defaultdict(list)
        dead: list[tuple[str, bytes]] = []
        families: dict[tuple[str, int], str] = {}
        received = self.counters.received
        route = self.route
        for topic, payload, _ in batch:
            routed = route(topic)
            if routed is None:
                received["unrouted"] += 1
                dead.append((topic, payload))
                continue
            received[routed.family] += 1
            slot = routed.slot
            groups[slot].append((topic, payload))
            families[slot] = routed.family
        records: list[Record] = []
        for (topic, part), items in groups.items():
            for chunk in _chunks(items, self.config.max_record_bytes):
                records.append(
                    (topic, part, None, encode_frames(chunk), [(CONTENT_TYPE_HEADER, FRAMES_CONTENT_TYPE)])
                )
        now = datetime.now(UTC)
        for mqtt_topic, payload in dead:
            problem = FieldProblem(
                path="", type="unrouted_topic",
                message=f"MQTT topic {mqtt_topic!r} is not zc/<commune>/<family>/<device_id> "
                "with a known family",
            )  # fmt: skip
            record = dead_letter(
                family="unknown", stage="bridge", raw=payload, problems=[problem],
                origin=Origin(transport="mqtt", topic=mqtt_topic), now=now,
            )  # fmt: skip
            records.append((DEAD_LETTER_TOPIC, None, b"unknown", fitting_json(record), []))
        refused = await self._send_until_confirmed(producer, records)
        self.counters.records += len(records) - len(refused)
        for slot, items in groups.items():
            self.counters.forwarded[families[slot]] += len(items)
        self.counters.dead_lettered += len(dead)
        if refused:
            await self._dead_letter_refused(producer, refused, now)

    async def _dead_letter_refused(
        self, producer: RenewableProducer, refused: list[tuple[Record, BaseException]], now: datetime
    ) -> None:
        """The readings of records Kafka will never take, to the dead-letter topic, each with
        the reason; only a dead letter refused in turn is lost, and counted and logged as such."""
        letters: list[Record] = []
        for (topic, _part, _key, value, _headers), error in refused:
            if topic == DEAD_LETTER_TOPIC:
                log.error("Kafka refused a dead letter of %d bytes (%r): it is lost", len(value), error)
                self.counters.undeliverable += 1
                self.counters.dead_lettered -= 1
                continue
            family = topic.removeprefix(raw_topic(""))
            readings = refused_readings(family, value, error, now)
            log.error(
                "Kafka refused a record of %d bytes (%r): its %d readings go to %s",
                len(value), error, len(readings), DEAD_LETTER_TOPIC,
            )  # fmt: skip
            self.counters.forwarded[family] -= len(readings)
            self.counters.dead_lettered += len(readings)
            letters += [(DEAD_LETTER_TOPIC, None, family.encode(), fitting_json(r), []) for r in readings]
        lost = await self._send_until_confirmed(producer, letters)
        for (_topic, _part, _key, value, _headers), error in lost:
            log.error("Kafka refused a dead letter of %d bytes (%r): it is lost", len(value), error)
            self.counters.undeliverable += 1
            self.counters.dead_lettered -= 1
        self.counters.records += len(letters)

    async def _send_until_confirmed(
        self, producer: RenewableProducer, records: list[Record]
    ) -> list[tuple[Record, BaseException]]:
        """Send until every record is confirmed, retrying what may pass later (a broker away,
        a leader moving, an ACL being fixed); return those Kafka refuses for what they are.

        Every record goes at once (a batch holds several records of a partition when a socket
        read brought many readings: one at a time cost a quarter of the bridge's rate). What
        failed is sent again partition by partition in order, each record once the one before
        it is confirmed: retrying them all at once let a device's later reading reach Kafka
        before an earlier one that failed again (issue 19). A record of the first attempt
        confirmed after one before it failed (the idempotent producer keeps a partition's
        batches in order and never expires them, config/patient_producer.py, so only a batch
        failed for good can) is counted in ``overtaken`` and logged.

        A record the broker refused leaves the idempotent producer's sequence on its partition
        one ahead of the broker's: every later record there would be refused as out of order,
        forever (seen with a 10 MiB reading: the bridge stalled). The producer is replaced
        first (bridge/renewable_producer.py), then what failed is sent again, in order."""
        refused: list[tuple[Record, BaseException]] = []
        queues = [collections.deque(records)]  # the first attempt: everything together
        delay = 0.5
        first = True
        while queues:
            heads = [record for queue in queues for record in queue] if first else [q[0] for q in queues]
            results = await producer.send_all(heads)
            broken = next((r for r in results if r is not None and breaks_the_sequence(r)), None)
            if broken is not None:
                await producer.renew(broken)
            failed: list[Record] = []
            for record, result in zip(heads, results, strict=True):
                if result is not None and not refuses_the_record(result):
                    failed.append(record)
                elif result is not None:
                    refused.append((record, result))
            if first:
                self._count_overtaken(heads, results)
                queues, first = partition_queues(failed), False
            else:
                sent = {id(record) for record in heads} - {id(record) for record in failed}
                for queue in queues:
                    if id(queue[0]) in sent:
                        queue.popleft()
                queues = [queue for queue in queues if queue]
            self.counters.send_failures += sum(result is not None for result in results)
            if failed:
                error = next(r for r in results if r is not None and not refuses_the_record(r))
                log.warning("Kafka refused %d records (%r); retrying in %.1fs", len(failed), error, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
        return refused

    def _count_overtaken(self, records: list[Record], results: list[BaseException | None]) -> None:
        """Count the records confirmed after an earlier one of their partition failed."""
        failed_in: set[tuple[str, int | None]] = set()
        overtaken = 0
        for record, result in zip(records, results, strict=True):
            where = (record[0], record[1])
            if result is not None and not refuses_the_record(result):
                failed_in.add(where)
            elif result is None and where in failed_in:
                overtaken += 1
        if overtaken:
            self.counters.overtaken += overtaken
            log.warning(
                "%d records reached Kafka ahead of an earlier one of their partition that failed: "
                "a device's readings may arrive out of order", overtaken,
            )  # fmt: skip

    # -- status ----------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        """The status file's figures, which /metrics serves too (bridge/bridge_metrics.py)."""
        c = self.counters
        return {
            "client_id": self.config.client_id,
            "pid": os.getpid(),
            "metrics_port": self._metrics_port,
            "mqtt_connected": self._mqtt.connected,
            "kafka_ready": self._kafka_ready,
            "subscriptions": self.config.subscriptions(),
            "received": dict(c.received),
            "forwarded": dict(c.forwarded),
            "dead_lettered": c.dead_lettered,
            "undeliverable": c.undeliverable,
            "redelivered_not_forwarded": c.redelivered,
            "records_out_of_order": c.overtaken,
            "kafka_send_failures": c.send_failures,
            "in_flight": c.in_flight() + self._inbox_messages,
            "kafka_records": c.records,
        }

    def _write_status(self) -> None:
        write_status(self.config.status_file, self.status())

    async def _report_status(self) -> None:
        while True:
            self._write_status()
            await asyncio.sleep(1.0)


def partition_queues(records: list[Record]) -> list[collections.deque[Record]]:
    """``records`` per (topic, partition), each in its order; the partition chosen by the
    producer (dead letters: None) is one queue per topic."""
    queues: dict[tuple[str, int | None], collections.deque[Record]] = {}
    for record in records:
        queues.setdefault((record[0], record[1]), collections.deque()).append(record)
    return list(queues.values())


def _chunks(items: list[tuple[str, bytes]], max_bytes: int) -> list[list[tuple[str, bytes]]]:
    """Split frames so that no record exceeds ``max_bytes`` (a lone larger item stays alone)."""
    chunks: list[list[tuple[str, bytes]]] = [[]]
    size = 0
    for topic, payload in items:
        item_size = len(topic) + len(payload) + 6
        if chunks[-1] and size + item_size > max_bytes:
            chunks.append([])
            size = 0
        chunks[-1].append((topic, payload))
        size += item_size
    return chunks
