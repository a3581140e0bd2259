"""What a run costs: CPU-seconds and peak memory of processes, bytes written to Kafka and InfluxDB.

CPU is read from /proc (user + system, all threads) for a set of named processes, at two
instants; peak RSS is the kernel's high-water mark (VmHWM) of each process since it
started. Bytes written to Kafka are those of the records written (key, value, headers;
Kafka's own batch framing aside); to InfluxDB, what a bucket's write-ahead log received and
the disk blocks its folders hold.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition
from bench_topics import admin_access
from process_stats import cpu_seconds, peak_rss_mb

from config.settings import Settings


class CpuMeter:
    """CPU-seconds of named processes between ``start()`` and ``stop()``."""

    def __init__(self, pids: Mapping[str, int]) -> None:
        self.pids = dict(pids)
        self._start: dict[str, float] = {}
        self._wall = 0.0
        self.seconds: dict[str, float] = {}
        self.wall_seconds = 0.0

    def start(self) -> CpuMeter:
        self._start = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        self._wall = time.monotonic()
        return self

    def stop(self) -> dict[str, float]:
        self.wall_seconds = time.monotonic() - self._wall
        self.seconds = {name: cpu_seconds(pid) - self._start[name] for name, pid in self.pids.items()}
        return self.seconds


def peak_rss(pids: Mapping[str, int]) -> dict[str, float]:
    """Peak resident memory (MiB) of each process since it started."""
    return {name: round(peak_rss_mb(pid), 1) for name, pid in pids.items()}


def idle_cpu(pids: Mapping[str, int], seconds: float) -> dict[str, float]:
    """Percent of one core each process uses over ``seconds`` with no traffic."""
    meter = CpuMeter(pids).start()
    time.sleep(seconds)
    used = meter.stop()
    return {name: round(100 * cpu / meter.wall_seconds, 2) for name, cpu in used.items()}


async def kafka_bytes_written(
    settings: Settings, before: dict[TopicPartition, int], after: dict[TopicPartition, int]
) -> dict[str, dict[str, float]]:
    """Per topic, the records written between two sets of end offsets and their bytes (key,
    value and headers): read back where they still are; on a compacted topic, where the
    cleaner may already have removed some, the count of those that survive times their mean."""
    consumer = AIOKafkaConsumer(**admin_access(settings).client_options(), max_partition_fetch_bytes=16 << 20)
    await consumer.start()
    seen: dict[str, list[int]] = {}  # topic -> [records read, their bytes]
    try:
        ranges = {tp: (before.get(tp, 0), end) for tp, end in after.items() if end > before.get(tp, 0)}
        consumer.assign(list(ranges))
        for tp, (start, _end) in ranges.items():
            consumer.seek(tp, start)
        remaining = set(ranges)
        while remaining:
            batches = await consumer.getmany(timeout_ms=2000, max_records=20_000)
            if not batches:
                break  # the rest was compacted away
            for tp, records in batches.items():
                end = ranges[tp][1]
                tally = seen.setdefault(tp.topic, [0, 0])
                for r in records:
                    if r.offset < end:
                        tally[0] += 1
                        tally[1] += len(r.key or b"") + len(r.value or b"")
                        tally[1] += sum(len(k) + len(v) for k, v in r.headers or ())
                if records and records[-1].offset >= end - 1:
                    remaining.discard(tp)
    finally:
        await consumer.stop()
    out: dict[str, dict[str, float]] = {}
    for topic in sorted({tp.topic for tp in after}):
        written = sum(end - before.get(tp, 0) for tp, end in after.items() if tp.topic == topic)
        read, size = seen.get(topic, [0, 0])
        out[topic] = {"records": written, "bytes": round(size / read * written) if read else 0}
    return out


def influx_bucket_bytes(settings: Settings, bucket_id: str) -> dict[str, int]:
    """What InfluxDB keeps for a bucket: ``wal``, the bytes its write-ahead log received (every
    write lands there first), and ``disk``, the blocks allocated to the bucket's folders (WAL,
    TSM, index; the series files are preallocated sparse, so their length would mislead)."""
    engine = (settings.influx_data_dir or settings.stack_home / "influxdb" / "data") / "engine"
    files = [f for part in ("wal", "data") for f in (engine / part / bucket_id).rglob("*") if f.is_file()]
    return {
        "wal": sum(f.stat().st_size for f in files if f.suffix == ".wal"),
        "disk": sum(f.stat().st_blocks * 512 for f in files),
    }


def per_million(value: float, readings: int) -> float:
    return round(value / readings * 1e6, 2) if readings else 0.0


def folder_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) if folder.exists() else 0
