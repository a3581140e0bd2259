"""Each stage alone, on the suite's workload, through the stage benchmarks' own functions.

- validation: ``validation_throughput.events_per_cpu_second`` on the workload's MQTT payloads
  (one core, no broker; best of ``repeats``);
- enrichment and aggregation: ``indicator_throughput.run_once`` on the validated records,
  flushing as often as the agent would at the workload's density (once a second of event
  time; median of ``repeats``); another pass gives the updates the agent sends (``agent_updates``);
- the bridge: ``bridge_throughput.run`` draining a backlog of the workload's messages
  (Mosquitto to Kafka acknowledgement);
- the sink: ``sink_throughput.run`` on those updates (Kafka to InfluxDB through
  `zerocarbon sink`'s code), which also measures InfluxDB's raw line-protocol write rate
  on the same lines in the same batches: that part's limit.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import bridge_throughput
import indicator_throughput
import sink_throughput
import validation_throughput
from energy_workload import INTERVAL_SECONDS, EnergyWorkload, Message, Record, iso
from expiring_publisher import publish_expiring

from reference.loader import load_reference
from schemas.indicator import IndicatorUpdate


def validation_stage(messages: Sequence[Message], reference_dir: Path, repeats: int) -> dict[str, Any]:
    payloads = [("energy", payload) for _, payload in messages]
    best, counters = validation_throughput.events_per_cpu_second(
        payloads, load_reference(reference_dir), datetime.now(UTC), repeats
    )
    return {
        "stage": "validation",
        "readings": len(payloads),
        "accepted": sum(counters.accepted.values()),
        "cpu_seconds_best_of": repeats,
        "cpu_seconds": round(best, 3),
        "readings_per_cpu_second": round(len(payloads) / best),
    }


def enrichment_aggregation_stage(
    records: Sequence[Record], readings: int, flush_every: int, repeats: int
) -> dict[str, Any]:
    """Readings per CPU-second, a flush every ``flush_every`` records, median of ``repeats``."""
    family_records = [("energy", value) for _, value in records]
    passes = [indicator_throughput.run_once(family_records, flush_every) for _ in range(repeats)]
    cpu = statistics.median(p[0] for p in passes)
    return {
        "stage": "enrichment_aggregation",
        "readings": readings,
        "records": len(records),
        "flush_every_records": flush_every,
        "indicator_updates": passes[0][1],
        "cpu_seconds_median_of": repeats,
        "cpu_seconds": round(cpu, 3),
        "readings_per_cpu_second": round(readings / cpu),
    }


def agent_updates(records: Sequence[Record], flush_every: int) -> list[IndicatorUpdate]:
    """The indicator updates the agent sends for ``records``, flushing every ``flush_every``."""
    updates: list[IndicatorUpdate] = []
    indicator_throughput.run_once([("energy", value) for _, value in records], flush_every, updates)
    return updates


def bridge_stage(workload: EnergyWorkload, run: str, readings: int, publishers: int) -> dict[str, Any]:
    def messages(bridge_run: str, publisher: int, count: int) -> list[tuple[str, bytes]]:
        now = time.time()
        at, start = iso(now), iso(now - INTERVAL_SECONDS)
        first = publisher * count
        return [
            workload.message(f"{run}-bridge-{bridge_run}", k, at, start) for k in range(first, first + count)
        ]

    result = bridge_throughput.run(readings, publishers, "backlog", messages, publish_expiring)
    return {
        "stage": "bridge",
        "mode": "draining a backlog (Mosquitto to Kafka acknowledgement)",
        "readings": result["readings"],
        "forwarded": result["forwarded"],
        "kafka_records": result["kafka_records"],
        "seconds": result["seconds"],
        "readings_per_second": result["readings_per_second"],
        "bridge_cpu_seconds_per_million": result["bridge_cpu_seconds_per_million"],
        "bridge_peak_rss_mb": result["bridge_peak_rss_mb"],
    }


def sink_stage(updates: list[IndicatorUpdate]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The sink stage and InfluxDB's raw write rate on the same lines."""
    result = asyncio.run(sink_throughput.run(len(updates), gzip_on=True, items=updates))
    sink, raw = cast(dict[str, Any], result["sink"]), cast(dict[str, Any], result["raw_line_protocol"])
    stage = {
        "stage": "sink",
        "updates": result["points"],
        "points_written": sink["points_written"],
        "seconds": sink["seconds"],
        "updates_per_second": sink["points_per_second"],
        "sink_cpu_seconds_per_million_updates": sink["sink_cpu_seconds_per_million_points"],
        "share_of_raw_influxdb": result["sink_share_of_raw"],
        "batch_size": result["batch_size"],
        "gzip_level": result["gzip_level"],
    }
    limit = {
        "part": "InfluxDB raw line-protocol writes (same lines, same batches, aiohttp, gzip as the sink)",
        "lines": result["points"],
        "seconds": raw["seconds"],
        "lines_per_second": raw["points_per_second"],
    }
    return stage, limit
