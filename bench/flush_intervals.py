"""Flush intervals against latency and CPU (issue 24): the trade-off behind the p99 target.

A reading waits for two timers in series before InfluxDB shows it: the worker's flush
(``ZC_INDICATOR_FLUSH_SECONDS``), which sends every window that moved since the last one,
then the sink's write (``ZC_SINK_FLUSH_INTERVAL_SECONDS``). Shorter intervals should make
fresher figures, and cost more: a window that moves in every flush is sent at every flush, so the
updates per reading, the sink's work and InfluxDB's grow as the interval shrinks; on a
loaded machine that work can cost more latency than the timers save (bench/README.md).

For each pair of intervals this runs the suite's end-to-end measure (``end_to_end.py``: our
bridge, worker and sink started afresh with those settings, MQTT publish to visible in
InfluxDB) at one offered rate, and reports latency percentiles, updates per reading and
CPU-seconds per million readings of our processes and of Kafka and InfluxDB. The pairs run
in turn, round after round (``--rounds``), so that a drift of the machine spreads over all of
them; the table gives the median of the rounds. Prints the table, saves the JSON in
bench/results/ (``flush-intervals-<time>.json``). Runs on the isolated stack instance, as
`make bench` does.

    .venv/bin/python bench/flush_intervals.py --rate 5000 --seconds 20 --rounds 2
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench_topics import declare_catalogue, service_groups
from end_to_end import EndToEndPlan, run_end_to_end
from energy_workload import EnergyWorkload, communes
from machine import describe
from report_table import table_lines
from results_file import RESULTS, save_results
from suite import clean_up

from config.settings import Settings
from schemas.catalogue import INDICATOR_TOPIC
from stack import control, isolated_stack
from zerocarbon.component_configs import stack_config

DEFAULT_PAIRS = "1:1,0.5:0.5,0.25:0.25,0.1:0.1,0.25:1,1:0.25"
Pair = tuple[float, float]  # the worker's flush, the sink's write (seconds)


def parse_pairs(text: str) -> list[Pair]:
    """``"1:1,0.25:0.5"`` -> [(1.0, 1.0), (0.25, 0.5)]: worker flush, then sink write, in seconds."""
    pairs = []
    for item in text.split(","):
        worker, sep, sink = item.strip().partition(":")
        if not sep:
            raise argparse.ArgumentTypeError(f"{item!r}: expected WORKER:SINK seconds, such as 0.25:0.5")
        pairs.append((float(worker), float(sink)))
    return pairs


def pair_env(pair: Pair) -> tuple[tuple[str, str], ...]:
    worker, sink = pair
    return (("ZC_INDICATOR_FLUSH_SECONDS", str(worker)), ("ZC_SINK_FLUSH_INTERVAL_SECONDS", str(sink)))


def measure(
    settings: Settings, workload: EnergyWorkload, reference: Path, pair: Pair, rate: float, seconds: float,
    folder: Path,
) -> dict[str, Any]:  # fmt: skip
    """One end-to-end run at ``rate`` with ``pair``'s intervals: the figures of the table."""
    plan = EndToEndPlan((rate,), seconds, 0, idle_seconds=2, settings_env=pair_env(pair))
    e2e = run_end_to_end(settings, workload, reference, plan, folder)
    run, footprint = e2e["runs"][0], e2e["footprint"]
    cpu = footprint["cpu_seconds_per_million_readings"]
    return {
        "worker_flush_seconds": pair[0],
        "sink_flush_seconds": pair[1],
        "all_visible": run["all_visible"],
        "tail_seconds": run["tail_seconds"],
        "latency_seconds": run["latency_seconds"],
        "updates_per_reading": round(
            footprint["kafka_records_written_per_million_readings"][INDICATOR_TOPIC] / 1e6, 4
        ),
        "cpu_seconds_per_million_readings": cpu,
        "ours_cpu_seconds_per_million_readings": footprint["ours_cpu_seconds_per_million_readings"],
        "readings": run["readings"],
        "accepted": e2e["validation_counters"]["accepted"],
    }


def _median(runs: Sequence[dict[str, Any]], *path: str) -> float | None:
    values = []
    for run in runs:
        value: Any = run
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if isinstance(value, int | float):
            values.append(float(value))
    return statistics.median(values) if values else None


def summary_rows(runs: Sequence[dict[str, Any]], pairs: Sequence[Pair]) -> list[list[Any]]:
    rows = []
    for pair in pairs:
        mine = [r for r in runs if (r["worker_flush_seconds"], r["sink_flush_seconds"]) == pair]
        cpu = ("cpu_seconds_per_million_readings",)
        rows.append([
            pair[0], pair[1], len(mine),
            _median(mine, "latency_seconds", "p50"), _median(mine, "latency_seconds", "p99"),
            _median(mine, "latency_seconds", "max"), _median(mine, "updates_per_reading"),
            _median(mine, *cpu, "worker"), _median(mine, *cpu, "sink"), _median(mine, *cpu, "bridge"),
            _median(mine, "ours_cpu_seconds_per_million_readings"),
            _median(mine, *cpu, "kafka"), _median(mine, *cpu, "influxdb"),
        ])  # fmt: skip
    return rows


HEADER = (
    "worker flush (s)", "sink write (s)", "runs", "p50 (s)", "p99 (s)", "max (s)", "updates per reading",
    "CPU-s/M worker", "CPU-s/M sink", "CPU-s/M bridge", "CPU-s/M ours", "CPU-s/M Kafka", "CPU-s/M InfluxDB",
)  # fmt: skip


def run(pairs: Sequence[Pair], rate: float, seconds: float, rounds: int, folder: Path) -> dict[str, Any]:
    settings = Settings()
    started = time.monotonic()
    control.up(stack_config(settings))
    asyncio.run(declare_catalogue(settings))
    before = service_groups(settings)
    workload = EnergyWorkload(communes(), settings.kafka_partitions)
    reference = workload.registry(folder / "reference")
    runs: list[dict[str, Any]] = []
    results: dict[str, Any] = {
        "bench": "flush intervals against latency and CPU (bench/flush_intervals.py)",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": describe(),
        "options": {"pairs": pairs, "rate": rate, "seconds": seconds, "rounds": rounds},
        "runs": runs,
    }
    try:
        for round_number in range(rounds):
            for pair in pairs:
                print(
                    f"[flush-intervals] round {round_number + 1}: worker {pair[0]} s, sink {pair[1]} s",
                    flush=True,
                )
                runs.append(
                    measure(settings, workload, reference, pair, rate, seconds, folder / f"{len(runs)}")
                )
    finally:
        results["clean_up"] = clean_up(settings, before)
    results["total_seconds"] = round(time.monotonic() - started, 1)
    lines = [
        f"Flush intervals at {rate:.0f} readings/s offered for {seconds:.0f} s, median of {rounds} "
        f"round(s), {results['when']} on {results['machine']['cpu']} ({results['machine']['cores']} cores).",
        "",
        *table_lines(HEADER, summary_rows(runs, pairs)),
    ]
    results["table_markdown"] = "\n".join(lines)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--pairs", type=parse_pairs, default=parse_pairs(DEFAULT_PAIRS),
        help=f"worker flush:sink write intervals in seconds, comma-separated (default {DEFAULT_PAIRS})",
    )  # fmt: skip
    parser.add_argument("--rate", type=float, default=5000.0, help="offered readings/s (default 5000)")
    parser.add_argument("--seconds", type=float, default=20.0, help="seconds of load per run (default 20)")
    parser.add_argument("--rounds", type=int, default=2, help="times each pair runs, in turn (default 2)")
    parser.add_argument(
        "--results", type=Path, default=RESULTS, help="folder of the JSON (default bench/results)"
    )
    args = parser.parse_args()
    isolated_stack.enter()  # never the stack a person runs: its groups and state stay untouched
    folder = Path(tempfile.mkdtemp(prefix="zc-bench-flush-"))
    try:
        results = run(args.pairs, args.rate, args.seconds, args.rounds, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(results["table_markdown"])
    save_results("flush-intervals", results, args.results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
