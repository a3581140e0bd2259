"""The limits of the parts, on the suite's workload: what Kafka and Mosquitto take with our
clients and nothing of ours in between (InfluxDB's raw write rate comes with the sink stage).

- Kafka produce-only: the workload's bridge records (frames of readings, one per raw
  partition) written with aiokafka as the bridge writes them (acks=all, idempotent,
  linger 5 ms), to a topic of the suite's own; records/s and readings/s until all are acknowledged.
- Kafka consume-only: the same records read back with aiokafka ``getmany``.
- Mosquitto publish: the workload's payloads at QoS 1 from ``publishers`` processes (the
  suite's raw-socket publisher), on a topic root nobody subscribes to: the broker only
  acknowledges.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from bench_topics import admin_access, create_topic, delete_topics
from energy_workload import FRAMES_HEADERS, Message, Record
from expiring_publisher import publish_expiring

from config.settings import Settings
from schemas.mqtt_principals import GATEWAY, SANDBOX_ROOT
from zerocarbon.component_configs import mqtt_ca_file, mqtt_login


async def _produce_only(settings: Settings, topic: str, records: Sequence[Record]) -> dict[str, float]:
    producer = AIOKafkaProducer(
        **admin_access(settings).client_options(), acks="all", enable_idempotence=True, linger_ms=5,
        max_batch_size=1 << 20, max_request_size=8 << 20,
    )  # fmt: skip
    await producer.start()
    try:
        t0, cpu0 = time.monotonic(), time.process_time()
        sent = [
            await producer.send(topic, value, partition=partition, headers=FRAMES_HEADERS)
            for partition, value in records
        ]
        await asyncio.gather(*sent)
        return {"seconds": time.monotonic() - t0, "client_cpu_seconds": time.process_time() - cpu0}
    finally:
        await producer.stop()


async def _consume_only(settings: Settings, topic: str, count: int) -> dict[str, float]:
    consumer = AIOKafkaConsumer(**admin_access(settings).client_options(), max_partition_fetch_bytes=8 << 20)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(settings.kafka_partitions)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        read = 0
        t0, cpu0 = time.monotonic(), time.process_time()
        while read < count:
            for records in (await consumer.getmany(timeout_ms=2000, max_records=10_000)).values():
                read += len(records)
            if time.monotonic() - t0 > 300:
                raise TimeoutError(f"read {read} of {count} records in 300 s")
        return {"seconds": time.monotonic() - t0, "client_cpu_seconds": time.process_time() - cpu0}
    finally:
        await consumer.stop()


def kafka_limits(
    settings: Settings, records: Sequence[Record], readings: int, run: str
) -> list[dict[str, Any]]:
    topic = f"zc.bench.limits-{run}"
    asyncio.run(create_topic(settings, topic))
    try:
        produced = asyncio.run(_produce_only(settings, topic, records))
        consumed = asyncio.run(_consume_only(settings, topic, len(records)))
    finally:
        asyncio.run(delete_topics(settings, [topic]))
    volume = sum(len(value) for _, value in records)
    return [
        _limit(
            "Kafka produce-only (aiokafka, acks=all, idempotent)", readings, len(records), volume, produced
        ),
        _limit("Kafka consume-only (aiokafka getmany)", readings, len(records), volume, consumed),
    ]


def _limit(part: str, readings: int, records: int, volume: int, timing: dict[str, float]) -> dict[str, Any]:
    seconds = timing["seconds"]
    return {
        "part": part,
        "records": records,
        "readings": readings,
        "megabytes": round(volume / 1e6, 2),
        "seconds": round(seconds, 3),
        "records_per_second": round(records / seconds),
        "readings_per_second": round(readings / seconds),
        "client_cpu_seconds": round(timing["client_cpu_seconds"], 3),
    }


def mosquitto_limit(
    settings: Settings, messages: Sequence[Message], run: str, publishers: int
) -> dict[str, Any]:
    """QoS 1 publish rate of the same payloads, every message acknowledged."""
    root = f"{SANDBOX_ROOT}/bench-{run}"  # the gateway may publish there; no bridge reads it
    moved = [(root + topic[topic.index("/") :], payload) for topic, payload in messages]
    shares = [moved[n::publishers] for n in range(publishers)]
    procs = [
        multiprocessing.Process(
            target=publish_expiring,
            args=(settings.mqtt_host, settings.mqtt_port, f"zc-bench-limit-{run}-{n}", share),
            kwargs={"login": mqtt_login(settings, GATEWAY), "ca_file": mqtt_ca_file(settings)},
        )
        for n, share in enumerate(shares)
    ]
    t0 = time.monotonic()
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join()
    seconds = time.monotonic() - t0
    failed = [proc.exitcode for proc in procs if proc.exitcode]
    if failed:
        raise RuntimeError(f"an MQTT publisher of the Mosquitto limit failed (exit codes {failed})")
    return {
        "part": f"Mosquitto QoS 1 publish ({publishers} raw-socket publishers, nobody subscribed)",
        "messages": len(moved),
        "seconds": round(seconds, 3),
        "messages_per_second": round(len(moved) / seconds),
    }
