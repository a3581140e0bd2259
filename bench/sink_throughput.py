"""Sink benchmark: sustained points/s from Kafka into the local InfluxDB through `zerocarbon
sink`'s code, against InfluxDB's raw line-protocol write rate with the same batches.

Both write the same points (one per series and hour: 28 communes x 6 sectors x 4 carriers,
over as many hours as needed) into fresh buckets, in chunks of ZC_SINK_BATCH_SIZE:
- raw: the line protocol, pre-formatted, POSTed back to back with aiohttp (no Kafka, no
  parsing, no buffering), compressed as the sink does (same gzip level): the ceiling;
- sink: the records on a fresh Kafka topic, read by the real IndicatorSink (parse, format,
  buffer, write, commit) in this process, timed from its first record to its last point.
The CPU-seconds of Kafka, Mosquitto and InfluxDB over each phase are saved beside the rates.
Target (sink issue): the sink sustains at least 80 % of the raw rate.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from bench_topics import admin_access, declare_catalogue
from footprint import CpuMeter
from influxdb_client import InfluxDBClient
from machine import describe
from results_file import report
from service_processes import influx_setup, stack_pids

from config.settings import Settings
from schemas.indicator import IndicatorUpdate, series_key
from sinks.indicator_sink import IndicatorSink
from sinks.influx_line_writer import GZIP_LEVEL, gzipped
from sinks.line_protocol import indicator_line
from stack.influx_provisioning import provision, revoke
from zerocarbon.component_configs import sink_config

COMMUNES = [f"17{n:03d}" for n in range(28)]
SECTORS = ["residential", "tertiary", "industry", "public", "agriculture", "transport"]
CARRIERS = ["electricity", "natural_gas", "heat_network", "heating_oil"]
START = datetime(2025, 1, 1, tzinfo=UTC)


def updates(count: int) -> list[IndicatorUpdate]:
    series = [(c, s, k) for c in COMMUNES for s in SECTORS for k in CARRIERS]
    now = datetime.now(UTC)
    out = []
    for i in range(count):
        commune, sector, carrier = series[i % len(series)]
        start = START + timedelta(hours=i // len(series))
        out.append(
            IndicatorUpdate(
                indicator="energy_consumed_kwh", unit="kWh", window="1h", window_start=start,
                window_end=start + timedelta(hours=1),
                dimensions={"commune": commune, "sector": sector, "carrier": carrier},
                value=round(0.5 + (i % 997) * 0.137, 3), final=True, updated_at=now,
            )
        )  # fmt: skip
    return out


def fresh_bucket(settings: Settings, name: str) -> None:
    with InfluxDBClient(
        url=settings.influx_url, token=settings.influx_token.get_secret_value(), org=settings.influx_org
    ) as client:
        api = client.buckets_api()
        if (bucket := api.find_bucket_by_name(name)) is not None:
            api.delete_bucket(bucket)
        api.create_bucket(bucket_name=name, org=settings.influx_org)


async def raw_rate(settings: Settings, bucket: str, lines: list[str], compress: bool) -> dict[str, float]:
    size = settings.sink_batch_size
    url = f"{settings.influx_url}/api/v2/write"
    params = {"org": settings.influx_org, "bucket": bucket, "precision": "s"}
    headers = {"Authorization": f"Token {settings.influx_token.get_secret_value()}"}
    if compress:
        headers["Content-Encoding"] = "gzip"
    bodies = ["\n".join(lines[i : i + size]).encode() for i in range(0, len(lines), size)]
    async with aiohttp.ClientSession() as session:
        services = CpuMeter(stack_pids(settings)).start()
        t0, cpu0 = time.monotonic(), time.process_time()
        for body in bodies:
            data = gzipped(body) if compress else body
            async with session.post(url, params=params, data=data, headers=headers) as response:
                if response.status != 204:
                    raise RuntimeError(f"raw write answered {response.status}: {await response.text()}")
        wall, cpu = time.monotonic() - t0, time.process_time() - cpu0
        services.stop()
    return {
        "seconds": round(wall, 3),
        "points_per_second": round(len(lines) / wall),
        "client_cpu_seconds": round(cpu, 3),
        "service_cpu_seconds": {name: round(s, 2) for name, s in services.seconds.items()},
    }


async def sink_rate(settings: Settings, items: list[IndicatorUpdate]) -> dict[str, float]:
    topic = f"zc.bench.sink-{uuid.uuid4().hex[:8]}"
    kafka = admin_access(settings)  # the topic and its records are the suite's; the sink reads as the sink
    # The sink principal's rights on zc.bench.* (a restart of the stack's Kafka withdrew them).
    await declare_catalogue(settings)
    admin = AIOKafkaAdminClient(**kafka.client_options())
    await admin.start()
    await admin.create_topics(
        [NewTopic(topic, num_partitions=settings.kafka_partitions, replication_factor=1)]
    )
    try:
        producer = AIOKafkaProducer(**kafka.client_options(), linger_ms=20, acks="all")
        await producer.start()
        for u in items:
            await producer.send(topic, u.model_dump_json(by_alias=True).encode(), key=series_key(u))
        await producer.flush()
        await producer.stop()

        sink = IndicatorSink(sink_config(settings), name="bench-sink", topic=topic)
        stop = asyncio.Event()
        running = asyncio.create_task(sink.run(stop))
        deadline = time.monotonic() + 120
        while sink.counters.records == 0:
            if running.done():
                running.result()
                raise RuntimeError("the sink stopped before reading a record")
            if time.monotonic() > deadline:
                # What the sink cannot read (a topic or a group its principal may not read), it
                # waits for forever: say so rather than hang the suite.
                stop.set()
                await running
                raise TimeoutError(
                    f"the sink read nothing from {topic} in 120 s: may its principal read that topic "
                    f"in the group {settings.sink_group}?"
                )
            await asyncio.sleep(0.005)
        services = CpuMeter(stack_pids(settings)).start()
        t0, cpu0 = time.monotonic(), time.process_time()
        # Done when every record is read and every point is in InfluxDB: the sink keeps only
        # the newest revision of a point, so points written can be fewer than records.
        while not (sink.counters.records >= len(items) and sink.drained):
            if running.done():
                running.result()
                raise RuntimeError("the sink stopped before writing every point")
            await asyncio.sleep(0.005)
        wall, cpu = time.monotonic() - t0, time.process_time() - cpu0
        services.stop()
        stop.set()
        await running
    finally:
        await admin.delete_topics([topic])
        await admin.close()
    return {
        "seconds": round(wall, 3),
        "points_per_second": round(len(items) / wall),
        "sink_cpu_seconds": round(cpu, 3),
        "sink_cpu_seconds_per_million_points": round(cpu / len(items) * 1e6, 1),
        "lines_formatted_by": getattr(sink, "lines_by", "python"),  # the attribute came with the Rust batcher
        "points_written": sink.counters.points_written,
        "write_requests": sink.counters.write_requests,
        "service_cpu_seconds": {name: round(s, 2) for name, s in services.seconds.items()},
        "write_latency_seconds": sink.counters.latency.summary(),
    }


async def run(
    points: int,
    gzip_on: bool,
    items: list[IndicatorUpdate] | None = None,
    memory_limit_bytes: int | None = None,
) -> dict[str, object]:
    """Raw and sink rates on ``items`` (default: ``updates(points)``), each into fresh buckets.

    ``memory_limit_bytes`` below a batch's size makes the sink spill to its disk spool and
    write from there: the path it takes while InfluxDB is away, measured with InfluxDB up."""
    spool = Path(tempfile.mkdtemp(prefix="zc-bench-spool-"))
    run_id = uuid.uuid4().hex[:6]
    tokens = spool.with_name(spool.name + "-tokens")
    settings = Settings(
        influx_bucket=f"bench_sink_{run_id}", influx_minute_bucket=f"bench_sink_{run_id}_1m",
        sink_spool_dir=spool, sink_mqtt_retained=False, sink_group=f"bench-sink-{run_id}", sink_gzip=gzip_on,
        influx_tokens_dir=tokens,
        **({"sink_memory_limit_bytes": memory_limit_bytes} if memory_limit_bytes is not None else {}),
    )  # fmt: skip
    items = items if items is not None else updates(points)
    lines = [indicator_line(u).line for u in items]
    raw_bucket = f"bench_raw_{run_id}"
    fresh_bucket(settings, raw_bucket)
    raw = await raw_rate(settings, raw_bucket, lines, compress=gzip_on)
    fresh_bucket(settings, settings.influx_bucket)
    # The run's buckets and a token that may write only them, as setup makes the service's.
    setup = influx_setup(settings, settings.influx_bucket, settings.influx_minute_bucket, tokens)
    provision(setup)
    try:
        sink = await sink_rate(settings, items)
    finally:
        revoke(setup)
    with InfluxDBClient(
        url=settings.influx_url, token=settings.influx_token.get_secret_value(), org=settings.influx_org
    ) as client:  # leave no benchmark data behind
        api = client.buckets_api()
        for name in (raw_bucket, settings.influx_bucket, settings.influx_minute_bucket):
            if (bucket := api.find_bucket_by_name(name)) is not None:
                api.delete_bucket(bucket)
    return {
        "benchmark": "sink",
        "when": datetime.now(UTC).isoformat(),
        "machine": describe(),
        "points": len(items),
        "batch_size": settings.sink_batch_size,
        "gzip": gzip_on,
        "gzip_level": GZIP_LEVEL if gzip_on else None,
        "memory_limit_bytes": settings.sink_memory_limit_bytes,
        "raw_line_protocol": raw,
        "sink": sink,
        "sink_share_of_raw": round(sink["points_per_second"] / raw["points_per_second"], 3),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    # 1 000 000: about 5 s per phase; at 200 000 a phase lasts 1 s and one pause of InfluxDB
    # (a cache snapshot, a collection) moved the ratio by 10-20 %.
    parser.add_argument(
        "--points", type=int, default=1_000_000, help="points per phase (default %(default)s)"
    )
    parser.add_argument("--no-gzip", action="store_true", help="plain requests on both sides")
    parser.add_argument(
        "--memory-limit-bytes",
        type=int,
        default=None,
        help="the sink's memory bound (default: ZC_SINK_MEMORY_LIMIT_BYTES); below a batch's "
        "size (about 2 MB at 5 000 points) every batch goes through the disk spool",
    )
    args = parser.parse_args()
    result = asyncio.run(
        run(args.points, gzip_on=not args.no_gzip, memory_limit_bytes=args.memory_limit_bytes)
    )
    report("sink", result, 22)
    return 0


if __name__ == "__main__":
    from stack import isolated_stack

    isolated_stack.enter()  # the benchmarks' own stack instance, never one a person runs
    sys.exit(main())
