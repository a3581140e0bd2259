"""End to end: readings published over MQTT until their indicators are visible in InfluxDB,
at several offered rates, with the footprint of our processes.

`zerocarbon bridge`, `worker` and `sink` run as an operator starts them (with the suite's
client id, groups, buckets and registry: ``service_processes.py``); the indicator state of
zc.valid.energy starts afresh. For each offered rate, a load process publishes the workload's
readings live (event time = publish instant) and a latency marker every 50 ms
(``paced_load.py``) while this process polls InfluxDB (``influx_visibility.py``):

- throughput: readings / (instant InfluxDB holds every reading of the run - first publish);
  a rate is sustained when what was published is visible within a few seconds of the last
  publish (``tail_seconds``);
- latency: per marker, from the instant its bytes went to the socket to the first InfluxDB
  answer that includes it: an upper bound, by up to one polling interval (0.1 s) plus the
  query's own time. It includes the bridge's 20 ms linger, the worker's once-a-second flush
  and the sink's once-a-second write: p50 sits near one second by design.

The footprint over all rates: CPU-seconds per million readings of each process (ours, the
brokers, and the load and polling), peak RSS, bytes of the records written to Kafka and
what the run's InfluxDB buckets received; then the idle CPU of our three processes with no traffic.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench_topics import forget_indicator_state, topic_ends
from energy_workload import EnergyWorkload
from footprint import CpuMeter, idle_cpu, influx_bucket_bytes, kafka_bytes_written, peak_rss, per_million
from influx_visibility import VisibilityPoller, marker_latencies
from influxdb_client import InfluxDBClient
from paced_load import LoadPlan, LoadProcess
from probe_latency import percentile  # nearest rank (its own, here, was one rank off)
from service_processes import (
    SinkTarget,
    forget_bridge,
    forget_sink_target,
    prepare_sink_target,
    stack_pids,
    start_bridge,
    start_sink,
    start_worker,
    stop,
)

from config.settings import Settings
from schemas.catalogue import CHECKPOINT_TOPIC, DEAD_LETTER_TOPIC, INDICATOR_TOPIC, raw_topic, valid_topic
from schemas.mqtt_principals import GATEWAY
from zerocarbon.component_configs import mqtt_ca_file, mqtt_login
from zerocarbon.demo import worker_counters

KAFKA_TOPICS = (
    raw_topic("energy"),
    valid_topic("energy"),
    INDICATOR_TOPIC,
    CHECKPOINT_TOPIC,
    DEAD_LETTER_TOPIC,
)
OURS = ("bridge", "worker", "sink")


@dataclass(frozen=True)
class EndToEndPlan:
    """Offered rates (None: as fast as the brokers acknowledge), seconds per paced rate,
    readings of the unpaced run, and how long to watch the idle service."""

    rates: tuple[float | None, ...]
    seconds: float
    max_readings: int
    idle_seconds: float
    warmup_readings: int = 500
    visible_timeout: float = 300.0
    # ZC_ settings the worker and the sink run with (the flush intervals of flush_intervals.py).
    settings_env: tuple[tuple[str, str], ...] = ()


class _Session:
    """One end-to-end session: our three processes up, the poller on, readings counted."""

    def __init__(self, settings: Settings, workload: EnergyWorkload, run: str, folder: Path) -> None:
        self.settings, self.workload, self.run, self.folder = settings, workload, run, folder
        self.next_reading = 0
        self.next_marker = 0
        self.expected_kwh = 0
        self.poller: VisibilityPoller | None = None

    def offer(self, rate: float | None, count: int, pids: dict[str, int], timeout: float) -> dict[str, Any]:
        """Publish ``count`` readings at ``rate`` and wait until InfluxDB shows all of them."""
        assert self.poller is not None
        s = self.settings
        plan = LoadPlan(self.run, self.next_reading, count, rate, self.next_marker)
        meter = CpuMeter(pids).start()
        gateway = mqtt_login(s, GATEWAY)  # the load publishes for many meters, as a gateway does
        communes = self.workload.communes
        load = LoadProcess(
            s.mqtt_host, s.mqtt_port, communes, s.kafka_partitions, plan, gateway, mqtt_ca_file(s)
        )
        report = load.report(timeout=timeout)
        markers = len(report.marker_times)
        self.expected_kwh += (
            sum(self.workload.kwh(k) for k in range(plan.first, plan.first + count)) + markers
        )
        seen = self.poller.wait_for(self.expected_kwh, timeout)
        cpu = meter.stop()
        cpu["load"] = report.cpu_seconds
        latencies = marker_latencies(self.poller.samples, report.marker_times, plan.first_marker)
        self.next_reading += count
        self.next_marker += markers
        visible_at = seen.at if seen is not None else None
        elapsed = (visible_at - report.first_publish) if visible_at else None
        return {
            "offered_readings_per_second": rate,
            "readings": count,
            "acknowledged_by_mosquitto": report.acknowledged - markers,
            "markers": markers,
            "publish_seconds": round(report.last_publish - report.first_publish, 3),
            "published_readings_per_second": round(
                count / max(1e-9, report.last_publish - report.first_publish)
            ),
            "all_visible": seen is not None,
            "publish_to_all_visible_seconds": round(elapsed, 3) if elapsed else None,
            "tail_seconds": round(visible_at - report.last_publish, 3) if visible_at else None,
            "end_to_end_readings_per_second": round(count / elapsed) if elapsed else None,
            "latency_seconds": {
                "markers_seen": len(latencies),
                "p50": _rounded(percentile(latencies, 50)),
                "p95": _rounded(percentile(latencies, 95)),
                "p99": _rounded(percentile(latencies, 99)),
                "max": _rounded(max(latencies) if latencies else None),
                "mean": _rounded(statistics.fmean(latencies) if latencies else None),
            },
            "cpu_seconds": {name: round(value, 3) for name, value in cpu.items()},
            "cpu_seconds_per_million_readings": {
                name: per_million(value, count) for name, value in cpu.items()
            },
        }


def _rounded(value: float | None) -> float | None:
    return round(value, 3) if value is not None else None


def _bucket_ids(settings: Settings, names: Sequence[str]) -> dict[str, str | None]:
    with InfluxDBClient(
        url=settings.influx_url, token=settings.influx_token.get_secret_value(), org=settings.influx_org
    ) as client:
        api = client.buckets_api()
        return {name: (b.id if (b := api.find_bucket_by_name(name)) is not None else None) for name in names}


def delete_buckets(settings: Settings, names: Sequence[str]) -> None:
    with InfluxDBClient(
        url=settings.influx_url, token=settings.influx_token.get_secret_value(), org=settings.influx_org
    ) as client:
        api = client.buckets_api()
        for name in names:
            if (bucket := api.find_bucket_by_name(name)) is not None:
                api.delete_bucket(bucket)


def delete_buckets_named(settings: Settings, prefix: str) -> list[str]:
    """Delete every bucket whose name starts with ``prefix`` (benchmark buckets); their names."""
    with InfluxDBClient(
        url=settings.influx_url, token=settings.influx_token.get_secret_value(), org=settings.influx_org
    ) as client:
        api = client.buckets_api()
        found = [b for b in api.find_buckets(limit=100).buckets if b.name.startswith(prefix)]
        for bucket in found:
            api.delete_bucket(bucket)
        return [b.name for b in found]


def run_end_to_end(
    settings: Settings, workload: EnergyWorkload, reference_dir: Path, plan: EndToEndPlan, folder: Path
) -> dict[str, Any]:
    run = uuid.uuid4().hex[:8]
    target = SinkTarget(
        f"zc-bench-sink-{run}", f"bench_e2e_{run}", f"bench_e2e_{run}_1m", folder / "sink-spool",
        folder / "influx-tokens",
    )  # fmt: skip
    bridge_id = f"zc-bench-bridge-{run}"
    session = _Session(settings, workload, f"e2e-{run}", folder)
    asyncio.run(forget_indicator_state(settings))
    procs = {}
    setup = None
    try:
        setup = prepare_sink_target(settings, target)
        procs["bridge"] = start_bridge(folder / "bridge.log", bridge_id)
        env = dict(plan.settings_env)
        procs["worker"] = start_worker(settings, folder / "worker.log", reference_dir, settings_env=env)
        procs["sink"] = start_sink(settings, folder / "sink.log", target, settings_env=env)
        ours = {name: proc.pid for name, proc in procs.items()}
        # The suite's own process polls InfluxDB (and the load runs in a child that reports its CPU).
        pids = {**ours, **stack_pids(settings), "suite": os.getpid()}
        session.poller = VisibilityPoller(settings, target.bucket).start()
        # Warm-up, not measured: the first records create the worker's state and the shards.
        session.offer(1000, plan.warmup_readings, pids, plan.visible_timeout)
        kafka_before = asyncio.run(topic_ends(settings, KAFKA_TOPICS))
        total = CpuMeter(pids).start()
        runs = []
        for rate in plan.rates:
            count = round(rate * plan.seconds) if rate is not None else plan.max_readings
            runs.append(session.offer(rate, count, pids, plan.visible_timeout))
            time.sleep(1.0)
        cpu = total.stop()
        readings = sum(r["readings"] for r in runs)
        kafka_after = asyncio.run(topic_ends(settings, KAFKA_TOPICS))
        time.sleep(3.0)  # the last flushes and writes, then nothing
        idle = idle_cpu(ours, plan.idle_seconds)
        rss = peak_rss(ours)
        counters = worker_counters(settings)
        session.poller.stop()
        bucket_ids = _bucket_ids(settings, [target.bucket, target.minute_bucket]).values()
        influx = [influx_bucket_bytes(settings, bucket_id) for bucket_id in bucket_ids if bucket_id]
    finally:
        if session.poller is not None:
            session.poller.stop()
        for proc in procs.values():
            stop(proc)
        forget_bridge(settings, bridge_id)
        if setup is not None:
            forget_sink_target(setup)
        delete_buckets(settings, [target.bucket, target.minute_bucket])
    kafka_written = asyncio.run(kafka_bytes_written(settings, kafka_before, kafka_after))
    return {
        "runs": runs,
        "footprint": {
            "readings": readings,
            "cpu_seconds_per_million_readings": {name: per_million(v, readings) for name, v in cpu.items()},
            "ours_cpu_seconds_per_million_readings": per_million(sum(cpu[n] for n in OURS), readings),
            "peak_rss_mb": rss,
            "kafka_records_written_per_million_readings": {
                t: per_million(w["records"], readings) for t, w in kafka_written.items()
            },
            "kafka_bytes_written_per_million_readings": {
                t: per_million(w["bytes"], readings) for t, w in kafka_written.items()
            },
            "kafka_bytes_written_per_million_readings_total": per_million(
                sum(w["bytes"] for w in kafka_written.values()), readings
            ),
            "influxdb_wal_bytes_per_million_readings": per_million(
                sum(b["wal"] for b in influx), readings + plan.warmup_readings
            ),
            "influxdb_disk_bytes_per_million_readings": per_million(
                sum(b["disk"] for b in influx), readings + plan.warmup_readings
            ),
            "idle_percent_of_a_core": idle,
            "idle_percent_of_a_core_ours": round(sum(idle.values()), 2),
            "idle_seconds_watched": plan.idle_seconds,
        },
        "influxdb_poll_errors": len(session.poller.errors) if session.poller else 0,
        "validation_counters": {
            "accepted": counters.get("accepted", {}).get("bench", 0),
            "dead_lettered": counters.get("dead_lettered", {}).get("bench", 0),
            "duplicates": counters.get("duplicates", {}).get("bench", 0),
            "reasons": counters.get("reasons", {}),
        },
        "worker_indicator_counters": counters.get("indicators", {}),
    }
