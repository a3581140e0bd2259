"""Validation benchmark: the validation engine, as the agent runs it, on realistic records.

Measures events/s on one core for `ValidationEngine.apply` and `count` (unpack the bridge's
frames, parse, schema, plausibility, de-duplication, dead letters, the valid arrays and
dead letters encoded for Kafka) over a mix of families packed as the bridge packs them, with
and without invalid events. Prints a table and saves JSON in bench/results/. Target
(event-contracts issue): >= 200 000 events/s per core.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from machine import describe
from results_file import RESULTS, save_results

from reference.loader import ReferenceData, load_reference
from schemas.batch_envelope import CONTENT_TYPE_HEADER, FRAMES_CONTENT_TYPE, encode_frames
from schemas.catalogue import raw_topic
from schemas.device_topics import device_topic
from schemas.families import FAMILIES
from streams.validation.deduplication import RecentEventIds
from streams.validation.engine import ValidationEngine
from streams.validation.raw_records import RawRecord
from streams.validation.stage import ValidationCounters

FRAMES_PER_RECORD = 100
"""Readings per raw record, as the bridge packs them under load (bench/README.md)."""


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


def bridge_records(payloads: list[tuple[str, bytes]], frames_per_record: int) -> list[RawRecord]:
    """The payloads as the bridge's frame records: per family, in order, ``frames_per_record``
    readings per record."""
    by_family: dict[str, list[tuple[str, bytes]]] = {}
    for family, payload in payloads:
        # Each reading on its own device's topic, as the broker's ACLs make it (validation
        # checks the payload against it); a reading with no device on a topic of its family.
        event = json.loads(payload)
        device = event.get(FAMILIES[family].device_field, "bench")
        topic = device_topic(str(event.get("commune", "17300")), family, str(device))
        by_family.setdefault(family, []).append((topic, payload))
    headers = [(CONTENT_TYPE_HEADER, FRAMES_CONTENT_TYPE)]
    records = []
    for family, frames in by_family.items():
        for start in range(0, len(frames), frames_per_record):
            value = encode_frames(frames[start : start + frames_per_record])
            records.append(RawRecord(raw_topic(family), 0, len(records), None, value, headers))
    return records


def events_per_cpu_second(
    payloads: list[tuple[str, bytes]],
    ref: ReferenceData,
    now: datetime,
    repeats: int,
    frames_per_record: int = FRAMES_PER_RECORD,
) -> tuple[float, ValidationCounters]:
    """Best CPU seconds over ``repeats`` passes of the engine (``apply`` then ``count``, as the
    agent does) over the payloads packed as bridge records, each pass with a fresh engine;
    and the last pass's counters."""
    records = bridge_records(payloads, frames_per_record)
    best = float("inf")
    counters = ValidationCounters()
    for _ in range(repeats):
        counters = ValidationCounters()
        engine = ValidationEngine(ref, RecentEventIds(horizon=3600), counters, 4, clock=lambda: now)
        t0 = time.process_time()
        for record in records:
            engine.count(engine.apply(record))
        best = min(best, time.process_time() - t0)
    if counters.received != len(payloads) or not counters.balanced():
        raise AssertionError(f"the engine lost readings: {counters.snapshot()}")
    return best, counters


def run(count: int, invalid_share: float, repeats: int, frames_per_record: int) -> dict[str, object]:
    ref = load_reference()
    now = datetime.now(UTC)
    payloads = sample_payloads(count, invalid_share, now)
    best, counters = events_per_cpu_second(payloads, ref, now, repeats, frames_per_record)
    return {
        "benchmark": "validation",
        "when": datetime.now(UTC).isoformat(),
        "machine": describe(),
        "events": count,
        "invalid_share": invalid_share,
        "frames_per_record": frames_per_record,
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
    parser.add_argument("--frames-per-record", type=int, default=FRAMES_PER_RECORD)
    parser.add_argument("--results-dir", type=Path, default=RESULTS, help="where the JSON goes")
    args = parser.parse_args()
    results = [run(args.events, share, args.repeats, args.frames_per_record) for share in (0.0, 0.05)]
    print(f"{'invalid share':>14} {'events':>8} {'cpu s':>7} {'events/cpu-s':>13}")
    for r in results:
        share, events, cpu, rate = (
            r["invalid_share"],
            r["events"],
            r["cpu_seconds"],
            r["events_per_cpu_second"],
        )
        print(f"{share:>14} {events:>8} {cpu:>7} {rate:>13}")
    save_results("validation", results, args.results_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
