"""The benchmark suite: one command, the same readings at every stage, in one run (`make bench`).

Brings the local stack up, then measures on one workload (``energy_workload.py``):
1. each stage alone: validation and enrichment + aggregation on one core, the bridge, the sink;
2. the limits of the parts: Kafka produce-only and consume-only with aiokafka on the bridge's
   records, Mosquitto's QoS 1 publish rate with the same payloads, InfluxDB's raw
   line-protocol rate with the sink's lines;
3. our worker against a Quix Streams peer and a naive faust baseline, Kafka to Kafka on the
   same records, with their window results compared;
4. end to end, MQTT publish to visible in InfluxDB at several offered rates, with latency
   percentiles and the footprint of our processes (CPU, peak RSS, bytes, idle CPU).
Prints markdown tables and saves everything as JSON, with the machine's description, in
bench/results/ (``--results DIR`` elsewhere). ``--tiny`` runs a few thousand readings (the
smoke test). Anything that touches the stack should run under ``flock /tmp/zc-stack.lock``.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench_topics import (
    declare_catalogue,
    delete_topics,
    forget_indicator_state,
    service_groups,
    skip_suite_records,
)
from end_to_end import EndToEndPlan, delete_buckets_named, run_end_to_end
from energy_workload import EnergyWorkload, bridge_records, communes, partition_chunks, valid_records
from machine import describe
from part_limits import kafka_limits, mosquitto_limit
from peer_comparison import run_peer_comparison
from report_table import markdown
from results_file import RESULTS, save_results
from stage_rates import (
    agent_updates,
    bridge_stage,
    enrichment_aggregation_stage,
    sink_stage,
    validation_stage,
)
from targets import evaluate

from config.settings import Settings
from stack import control, isolated_stack
from zerocarbon.component_configs import stack_config

# Our topics, the naive baseline's faust topics, Quix Streams' changelog topics.
BENCH_TOPIC_PREFIXES = ("zc.bench.", "zc-bench-naive-", "changelog__zc.bench.", "repartition__zc.bench.")
BENCH_BUCKET_PREFIX = "bench_"


@dataclass(frozen=True)
class SuiteOptions:
    tiny: bool
    readings: int  # of the shared workload (stages, limits, peers)
    density: float  # readings per second of event time in that workload
    per_record: int  # readings per raw record, as the bridge packs them around 20 000/s
    repeats: int
    bridge_readings: int
    end_to_end: EndToEndPlan

    @classmethod
    def for_run(cls, tiny: bool) -> SuiteOptions:
        if tiny:
            return cls(True, 3_000, 1_000, 100, 1, 2_000, EndToEndPlan((500, None), 3, 2_000, 2, 100, 120))
        return cls(
            False, 200_000, 10_000, 100, 3, 300_000, EndToEndPlan((1000, 5000, 20_000, None), 20, 200_000, 20)
        )


def clean_up(settings: Settings, before: dict[str, Any]) -> dict[str, Any]:
    """Leave the stack as the service expects it: no bench topics, a fresh indicator state, the
    service's groups past the suite's records (where they were caught up before it)."""
    asyncio.run(forget_indicator_state(settings))
    deleted = asyncio.run(delete_topics(settings, BENCH_TOPIC_PREFIXES))
    buckets = delete_buckets_named(settings, BENCH_BUCKET_PREFIX)
    skipped = {
        group: asyncio.run(skip_suite_records(settings, group, committed, before["ends"]))
        for group, committed in before["committed"].items()
    }
    return {
        "bench_topics_deleted": len(deleted),
        "bench_buckets_deleted": len(buckets),
        "service_groups_moved_past_suite_records": skipped,
    }


def run_suite(options: SuiteOptions, folder: Path) -> dict[str, Any]:
    settings = Settings()
    started = time.monotonic()
    control.up(stack_config(settings))
    asyncio.run(declare_catalogue(settings))
    before = service_groups(settings)
    run = uuid.uuid4().hex[:8]
    workload = EnergyWorkload(communes(), settings.kafka_partitions)
    reference_dir = workload.registry(folder / "reference")
    # Event time two days back (validation accepts it, nothing live is disturbed), one reading
    # per meter in turn; one reading per series a day later closes every window.
    day = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=2)
    start = (day + timedelta(hours=1)).timestamp()
    messages = [
        *workload.laid_out(f"b{run}", options.readings, start, options.density),
        *workload.closers(f"b{run}", start + 86400 + 3600),
    ]
    chunks = partition_chunks(messages, workload, options.per_record)
    records = valid_records(chunks, reference_dir, settings.kafka_partitions, datetime.now(UTC))
    readings = len(messages)
    results: dict[str, Any] = {
        "suite": "zerocarbon benchmark suite (bench/suite.py)",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": describe(),
        "options": asdict(options),
        "workload": {
            "readings": readings,
            "meters": len(workload.meters),
            "series": len(workload.meters) // 4,
            "readings_per_event_second": options.density,
            "raw_records": len(chunks),
            "valid_records": len(records),
            "readings_per_record": options.per_record,
            "note": "energy interval readings (1-3 kWh over 10 min) of 1 120 meters, 4 per commune x "
            "sector x carrier series; the last 280 readings (one per series, a day later) close every window",
            "sink_input": "the indicator updates the agent sends for these readings at 1 000 readings/s",
        },
        "logs": str(folder),
    }
    try:
        print(
            f"[bench] workload: {readings} readings, {len(records)} valid records; logs in {folder}",
            flush=True,
        )
        # The agent flushes once a second: at the workload's density (a live stream of that
        # many readings a second), once every ``density`` readings.
        flush_every = max(1, round(options.density / options.per_record))
        stages = [
            validation_stage(messages, reference_dir, options.repeats),
            enrichment_aggregation_stage(records, readings, flush_every, options.repeats),
        ]
        # The sink's input: what the agent sends for these readings at 1 000 readings/s (a flush
        # every 1 000 readings), many revisions of each window as in a live day.
        updates = agent_updates(records, max(1, round(1000 / options.per_record)))
        print("[bench] limits: Kafka, Mosquitto", flush=True)
        limits = [
            *kafka_limits(settings, bridge_records(chunks), readings, run),
            mosquitto_limit(settings, messages, run, publishers=2),
        ]
        print("[bench] peers: our worker, Quix Streams, naive faust", flush=True)
        results["peers"] = run_peer_comparison(settings, records, readings, reference_dir, run, folder)
        print("[bench] stages: bridge, sink", flush=True)
        stages.append(bridge_stage(workload, run, options.bridge_readings, publishers=2))
        sink, influx_limit = sink_stage(updates)
        results["stages"], results["limits"] = [*stages, sink], [*limits, influx_limit]
        print("[bench] end to end", flush=True)
        results["end_to_end"] = run_end_to_end(settings, workload, reference_dir, options.end_to_end, folder)
    finally:
        results["clean_up"] = clean_up(settings, before)
    results["total_seconds"] = round(time.monotonic() - started, 1)
    results["targets"] = evaluate(results)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--tiny", action="store_true", help="a few thousand readings: checks that it all runs"
    )
    parser.add_argument(
        "--results", type=Path, default=RESULTS, help="folder of the JSON (default bench/results)"
    )
    parser.add_argument("--keep-logs", action="store_true", help="keep the run's logs and state folder")
    args = parser.parse_args()
    # The suite moves consumer groups and writes checkpoints: it runs on the isolated instance
    # of the stack, never on one a person runs (same binaries and configuration, other ports).
    isolated_stack.enter()
    folder = Path(tempfile.mkdtemp(prefix="zc-bench-suite-"))
    results = run_suite(SuiteOptions.for_run(args.tiny), folder)
    table = markdown(results)
    results["table_markdown"] = table
    print(table)
    save_results("suite-tiny" if args.tiny else "suite", results, args.results)
    if not args.keep_logs:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
