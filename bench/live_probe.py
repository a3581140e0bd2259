"""The soak's live probe (issue 20): how late live figures are, on the wall clock.

The simulators' device clocks run about 300 times faster than the wall clock, so how late
the territory's figures are cannot be read from them. The probe publishes one reading a
second (``interval``) over MQTT as a device does, through Mosquitto, the bridge,
validation and the indicator stage, and reads zc.indicators: for each reading, the first
update of its window whose value includes it. The delay from the publication to that
update's record on zc.indicators (its Kafka timestamp, set by the worker's producer) is how
late a live figure is; the instant the probe's consumer had it is kept beside it.

What the readings carry, and why they change nothing of the simulated readings' fate, is
in ``probe_latency.py``. The probe publishes as the gateway the simulator publishes as, on
the station's own topic ``zc/<commune>/environment/<station>``, with paho's device client
(``sensors/device_client.py``); it reads the one partition of zc.indicators its windows go
to, as the Kafka admin and without a consumer group, from its end when the probe starts.
It runs in a thread of the soak, with an asyncio loop of its own.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from bench_topics import admin_access, topic_ends
from probe_latency import (
    OFFSET_IN_SLOT,
    OLDEST_DAYS,
    ProbeDevice,
    ProbeMatcher,
    ProbeReading,
    SeenUpdate,
    delays,
    key_partition,
    payload,
    per_phase,
    probe_slots,
    reading_value,
    series_dimensions,
    update_key,
)

from config.settings import Settings
from reference.loader import ReferenceData
from schemas.catalogue import INDICATOR_TOPIC
from schemas.mqtt_principals import GATEWAY
from sensors.device_client import DeviceClient
from sensors.mqtt_publishers import MqttTarget
from zerocarbon.component_configs import mqtt_ca_file, mqtt_login

PROBE_STATION = "aq-17300-0001"
"""An air-quality station of the shipped registry (reference/data/devices.csv) that no
simulated device is (theirs are ``sim-...``): La Rochelle, the commune of most readings,
and producer ``atmo-na``, which the simulated stations share."""
DAY = 86400


def probe_device(reference: ReferenceData, device_id: str = PROBE_STATION) -> ProbeDevice:
    """The registry's station ``device_id``; ValueError if the registry has no such station."""
    device = reference.devices.get(device_id)
    if device is None or device.device_type != "air_quality_station":
        raise ValueError(f"the registry has no air-quality station {device_id!r} for the live probe")
    return ProbeDevice(device.device_id, device.commune, device.producer_id)


def _epoch(instant: str) -> float:
    return datetime.fromisoformat(instant).timestamp()


def seen_update(record: ConsumerRecord[bytes, bytes], marker: bytes, received_at: float) -> SeenUpdate | None:
    """The probe's 15-minute update a record of zc.indicators holds, else None (cheap for
    the others: a substring test)."""
    value = record.value or b""
    if marker not in value or b'"window":"15m"' not in value:
        return None
    update = json.loads(value)
    return SeenUpdate(
        window_start=int(_epoch(update["window_start"])),
        value=float(update["value"]),
        final=bool(update["final"]),
        revision=int(update["revision"]),
        kafka_at=record.timestamp / 1000,
        received_at=received_at,
        flushed_at=_epoch(update["updated_at"]),
    )


class LiveProbe:
    """Publishes a reading every ``interval`` seconds from ``start_after`` seconds after
    ``start`` until ``stop_publishing``, and matches each to its update until ``finish``.

    Reading k is stamped in the k-th 15-minute window back from ``anchor`` (epoch seconds)
    whose update falls on partition ``partition`` of zc.indicators: give an anchor behind
    every event time the simulators send (``probe_latency.py``)."""

    def __init__(
        self,
        settings: Settings,
        device: ProbeDevice,
        anchor: float,
        run: str,
        *,
        interval: float = 1.0,
        start_after: float = 5.0,
        partition: int = 0,
    ) -> None:
        self.settings, self.device, self.run = settings, device, run
        self.anchor, self.interval, self.start_after = int(anchor), interval, start_after
        self.partition = partition
        self.dimensions = series_dimensions(device)
        self.marker = f'"station":"{device.device_id}"'.encode()
        # Touched by the probe's thread and the soak's, under ``lock``.
        self.lock = threading.Lock()
        self.matcher = ProbeMatcher()
        self.fresh: list[dict[str, float]] = []  # delays of the readings matched since last asked
        self.partitions: int | None = None
        self.report: dict[str, Any] | None = None
        self.error: str | None = None
        self.exhausted_at: float | None = None  # no event time left within validation's bounds
        self.records_read = 0
        self.updates_seen = 0
        self.cpu_seconds: float | None = None
        self._ready = threading.Event()
        self._published = threading.Event()
        self._stop_publishing = False
        self._match_until: float | None = None  # monotonic deadline, set by ``finish``
        self._abort = False
        self._thread = threading.Thread(target=self._run, name="live-probe", daemon=True)

    # -- the soak's side -------------------------------------------------------------------
    def start(self, timeout: float = 60.0) -> None:
        """Connect (Kafka, then MQTT) and start; RuntimeError if the probe could not."""
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError(f"the live probe was not connected after {timeout:g} s")
        if self.error is not None:
            raise RuntimeError(f"the live probe could not start: {self.error}")

    def stop_publishing(self, timeout: float = 60.0) -> dict[str, Any] | None:
        """Stop publishing and wait for the broker's acknowledgements: what validation should
        count of the probe (the simulator's report's shape), None if it never published."""
        self._stop_publishing = True
        self._published.wait(timeout)
        return self.report

    def fresh_delays(self) -> list[dict[str, float]]:
        """The delays (``probe_latency.delays``) of the readings matched since the last call."""
        with self.lock:
            fresh, self.fresh = self.fresh, []
        return fresh

    def finish(self, timeout: float) -> None:
        """Wait until every reading published is matched, ``timeout`` seconds at most, then stop."""
        self._stop_publishing = True
        self._match_until = time.monotonic() + timeout
        self._thread.join(timeout + 60)

    def close(self) -> None:
        """Stop at once (an interrupted soak): nothing more is published or matched."""
        self._abort = self._stop_publishing = True
        self._match_until = time.monotonic()
        if self._thread.is_alive():
            self._thread.join(60)

    def results(self, marks: list[tuple[float, str]]) -> dict[str, Any]:
        """What the probe did and saw, and its delays per phase of ``marks`` (epoch, name)."""
        with self.lock:
            readings, matched = list(self.matcher.readings), dict(self.matcher.matched)
        # One line per reading in the JSON (a list per reading would take seven).
        rows = [_row(r, delays(r, matched[r.k]) if r.k in matched else None) for r in readings]
        return {
            "device": self.device.device_id,
            "topic": self.device.topic,
            "producer_id": self.device.producer_id,
            "series": {
                "indicator": "environment_value",
                "dimensions": dict(self.dimensions),
                "window": "15m",
            },
            "indicator_partition": self.partition,
            "indicator_partitions": self.partitions,
            "anchor": _iso(self.anchor),
            "event_times": [_iso(readings[0].event_time), _iso(readings[-1].event_time)]
            if readings
            else None,
            "interval_seconds": self.interval,
            "published": len(readings),
            "matched": len(matched),
            "report": self.report,
            "phases": [[round(at, 3), name] for at, name in marks],
            "per_phase": per_phase(readings, matched, marks),
            "records_read": self.records_read,
            "updates_seen": self.updates_seen,
            "thread_cpu_seconds": self.cpu_seconds,
            "exhausted_at": self.exhausted_at,
            "error": self.error,
            "readings_columns": "k,event_time,value,published_at,flush_s,indicators_s,received_s",
            "readings": rows,
        }

    # -- the probe's thread ----------------------------------------------------------------
    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except Exception as exc:
            self.error = repr(exc)
        finally:
            self._ready.set()
            self._published.set()

    async def _main(self) -> None:
        s = self.settings
        ends = await topic_ends(s, [INDICATOR_TOPIC])
        self.partitions = len(ends)
        tp = TopicPartition(INDICATOR_TOPIC, self.partition)
        consumer = AIOKafkaConsumer(**admin_access(s).client_options(), max_partition_fetch_bytes=8 << 20)
        await consumer.start()
        client: DeviceClient | None = None
        try:
            consumer.assign([tp])
            consumer.seek(tp, ends[tp])
            gateway = mqtt_login(s, GATEWAY)
            target = MqttTarget(
                s.mqtt_host, s.mqtt_port, gateway.username, gateway.password,
                client_id=f"zc-bench-soak-probe-{self.run}", ca_file=mqtt_ca_file(s),
            )  # fmt: skip
            client = DeviceClient(
                target.host, target.port, target.client_id,
                username=target.username, password=target.password, ca_file=target.ca_file,
            )  # fmt: skip
            await asyncio.get_running_loop().run_in_executor(None, client.connect)
            self._ready.set()
            await asyncio.gather(self._publish(client), self._consume(consumer, tp))
        finally:
            self.cpu_seconds = round(time.thread_time(), 2)
            await consumer.stop()
            if client is not None:
                if self.report is None:  # publishing was cut short: what the broker answered so far
                    self.report = _report(client, client.acknowledged)
                client.close()

    def _slots(self) -> Iterator[int]:
        count = self.partitions or 1
        oldest = int(time.time()) - OLDEST_DAYS * DAY
        return probe_slots(
            self.anchor,
            oldest,
            lambda slot: key_partition(update_key(self.dimensions, slot), count) == self.partition,
        )

    async def _publish(self, client: DeviceClient) -> None:
        try:
            await asyncio.sleep(self.start_after)
            slots = self._slots()
            began, k = time.monotonic(), 0
            while not self._stop_publishing:
                slot = next(slots, None)
                if slot is None:
                    self.exhausted_at = time.time()
                    break
                event_time, value = slot + OFFSET_IN_SLOT, reading_value(k)
                body = payload(self.device, k, event_time, value, self.run)
                reading = ProbeReading(k, event_time, value, time.time())
                client.publish(self.device.topic, body)
                with self.lock:
                    self.matcher.published(reading)
                k += 1
                while not self._stop_publishing and time.monotonic() < began + k * self.interval:
                    await asyncio.sleep(min(0.2, began + k * self.interval - time.monotonic()))
            wait = 2.0 if self._abort else 30.0
            acknowledged = await asyncio.get_running_loop().run_in_executor(
                None, client.wait_acknowledged, wait
            )
            self.report = _report(client, acknowledged)
        finally:
            self._published.set()

    def _all_matched(self) -> bool:
        with self.lock:
            return self.matcher.all_matched()

    async def _consume(self, consumer: AIOKafkaConsumer, tp: TopicPartition) -> None:
        while True:
            if self._published.is_set() and self._all_matched():
                return
            if self._match_until is not None and time.monotonic() >= self._match_until:
                return
            batches = await consumer.getmany(tp, timeout_ms=200, max_records=20_000)
            received_at = time.time()
            for record in batches.get(tp, []):
                self.records_read += 1
                update = seen_update(record, self.marker, received_at)
                if update is not None:
                    self.updates_seen += 1
                    self._match(update)

    def _match(self, update: SeenUpdate) -> None:
        with self.lock:
            reading = self.matcher.seen(update)
            if reading is not None:
                self.fresh.append(delays(reading, update))


def _report(client: DeviceClient, acknowledged: int) -> dict[str, Any]:
    """What validation should count of the probe, in the shape of the simulator's report."""
    return {
        "messages": client.sent,
        "acknowledged": acknowledged,
        "refused": client.refused,
        "expected_at_validation": {"accepted": client.sent, "dead_lettered": 0, "duplicates": 0},
    }


def _row(reading: ProbeReading, found: dict[str, float] | None) -> str:
    """A reading and its delays (``probe_latency.delays``; empty if no update included it)."""
    tail = ",".join(str(found[kind]) for kind in ("flush", "indicators", "received")) if found else ",,"
    return f"{reading.k},{reading.event_time},{reading.value:g},{reading.published_at:.3f},{tail}"


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")
