"""Indicator benchmark: enrichment and windowed aggregation on one core, no broker.

What the indicator agent does per valid record, minus Kafka: parse the record's JSON array
of validated events, enrich each (factors), add it to the event-time windows, and flush the
updates as IndicatorUpdate models. Readings per CPU-second; prints a table and saves JSON in
bench/results/. Target (indicator-engine issue): >= 100 000 readings/s per worker.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime, timedelta

from machine import describe
from results_file import save_results

from reference.loader import load_reference
from streams.enrichment import Contribution
from streams.indicator_agent import contribute
from streams.indicator_catalogue import to_indicator_update
from streams.validation_agent import VALID_ARRAY
from streams.window_assignment import DEFAULT_WINDOWS_SECONDS
from streams.window_state import WindowState
from streams.window_state_codec import PartitionState


def valid_records(readings: int, per_record: int) -> list[bytes]:
    """Energy readings of one meter every 10 s, packed like the validation agent's output."""
    start = datetime(2026, 11, 1, tzinfo=UTC)
    events = [
        {
            "event_id": f"e{k}",
            "producer_id": "enedis",
            "schema_version": 1,
            "event_time": (start + timedelta(seconds=10 * k)).isoformat(),
            "ingestion_time": (start + timedelta(seconds=10 * k + 1)).isoformat(),
            "schema": "energy.reading",
            "meter_id": "elec-17300-0001",
            "commune": "17300",
            "sector": "residential",
            "carrier": "electricity",
            "quantity": 20.0 + k % 7,
            "unit": "Wh",
            "kind": "interval",
            "interval_start": (start + timedelta(seconds=10 * k - 10)).isoformat(),
        }
        for k in range(readings)
    ]
    return [json.dumps(events[i : i + per_record]).encode() for i in range(0, readings, per_record)]


def run(readings: int, per_record: int, flush_every: int = 20) -> dict[str, object]:
    """``flush_every`` records between flushes: the agent flushes once a second, i.e. after
    about 20 records of 500 readings at 10 000 readings/s."""
    ref = load_reference()
    records = valid_records(readings, per_record)
    state = PartitionState(WindowState(DEFAULT_WINDOWS_SECONDS, 300))
    adapter = VALID_ARRAY["energy"]
    now = datetime.now(UTC)
    updates = 0
    t0 = time.process_time()
    for n, record in enumerate(records, 1):
        contributions = [contribute(state, event, ref) for event in adapter.validate_json(record)]
        state.windows.add_all(c for c in contributions if isinstance(c, Contribution))
        if n % flush_every == 0 or n == len(records):
            updates += len([to_indicator_update(u, now) for u in state.windows.flush()])
    cpu = time.process_time() - t0
    return {
        "benchmark": "indicators",
        "when": datetime.now(UTC).isoformat(),
        "machine": describe(),
        "readings": readings,
        "readings_per_record": per_record,
        "indicator_updates": updates,
        "cpu_seconds": round(cpu, 3),
        "readings_per_cpu_second": round(readings / cpu),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--readings", type=int, default=100_000)
    parser.add_argument("--per-record", type=int, default=500)
    args = parser.parse_args()
    result = run(args.readings, args.per_record)
    for key, value in result.items():
        if key != "machine":
            print(f"{key:<24} {value}")
    save_results("indicators", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
