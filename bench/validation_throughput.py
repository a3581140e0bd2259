"""Validation benchmark: the pure validation function on batches of realistic events.

Measures events/s on one core for `validate_payload` (parse, schema, plausibility,
dead-letter building) over a mix of families, with and without invalid events. Prints a
table and saves JSON in bench/results/. Target (event-contracts issue): >= 200 000 events/s
per core.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime, timedelta

from machine import describe
from results_file import save_results

from reference.loader import ReferenceData, load_reference
from schemas.dead_letter import Origin
from schemas.families import FAMILIES
from streams.validation.deduplication import RecentEventIds
from streams.validation.stage import ValidationCounters, validate_payload


def sample_payloads(count: int, invalid_share: float, now: datetime) -> list[tuple[str, bytes]]:
    """A deterministic mix: 60 % energy, 25 % environment, 15 % mobility; some invalid."""
    out: list[tuple[str, bytes]] = []
    start = (now - timedelta(minutes=15)).isoformat()
    t = now.isoformat()
    every = int(1 / invalid_share) if invalid_share else 0
    for k in range(count):
        event: dict[str, object] = {"event_id": f"e{k}", "event_time": t, "commune": "17300"}
        if every and k % every == 0:
            family = "energy"
            event = {"event_id": f"bad{k}", "producer_id": "enedis", "quantity": -1}
        elif k % 20 < 12:
            family = "energy"
            event |= {
                "producer_id": "enedis", "meter_id": "elec-17300-0001", "sector": "residential",
                "carrier": "electricity", "quantity": 300 + k % 50, "unit": "Wh", "kind": "interval",
                "interval_start": start,
            }  # fmt: skip
        elif k % 20 < 17:
            family = "environment"
            event |= {
                "producer_id": "atmo-na", "sensor_id": "aq-17300-0001", "quantity": "no2",
                "value": 10 + k % 30, "unit": "ug/m3",
            }  # fmt: skip
        else:
            family = "mobility"
            event |= {
                "producer_id": "ville-lr", "device_id": "parking-17300-0001", "kind": "parking_occupancy",
                "occupied_spot_number": k % 300, "total_spot_number": 400,
            }  # fmt: skip
        out.append((family, json.dumps(event, separators=(",", ":")).encode()))
    return out


def events_per_cpu_second(
    payloads: list[tuple[str, bytes]], ref: ReferenceData, now: datetime, repeats: int
) -> tuple[float, ValidationCounters]:
    """Best CPU seconds over ``repeats`` passes of ``validate_payload`` on every (family,
    payload), each pass with a fresh de-duplication memory; and the last pass's counters."""
    origin = Origin(transport="kafka", topic="bench", partition=0, offset=0)
    best = float("inf")
    counters = ValidationCounters()
    for _ in range(repeats):
        recent = RecentEventIds(horizon=3600)
        counters = ValidationCounters()
        t0 = time.process_time()
        for family, raw in payloads:
            counters.count(validate_payload(FAMILIES[family], raw, origin, ref, now, recent, 0.0))
        best = min(best, time.process_time() - t0)
    return best, counters


def run(count: int, invalid_share: float, repeats: int) -> dict[str, object]:
    ref = load_reference()
    now = datetime.now(UTC)
    payloads = sample_payloads(count, invalid_share, now)
    best, counters = events_per_cpu_second(payloads, ref, now, repeats)
    return {
        "benchmark": "validation",
        "when": datetime.now(UTC).isoformat(),
        "machine": describe(),
        "events": count,
        "invalid_share": invalid_share,
        "accepted": sum(counters.accepted.values()),
        "dead_lettered": sum(counters.dead_lettered.values()),
        "cpu_seconds_best_of": repeats,
        "cpu_seconds": round(best, 3),
        "events_per_cpu_second": round(count / best),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    results = [run(args.events, share, args.repeats) for share in (0.0, 0.05)]
    print(f"{'invalid share':>14} {'events':>8} {'cpu s':>7} {'events/cpu-s':>13}")
    for r in results:
        share, events, cpu, rate = (
            r["invalid_share"],
            r["events"],
            r["cpu_seconds"],
            r["events_per_cpu_second"],
        )
        print(f"{share:>14} {events:>8} {cpu:>7} {rate:>13}")
    save_results("validation", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
