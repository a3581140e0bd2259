"""Indicator benchmark: enrichment and windowed aggregation on one core, no broker.

The indicator agent's own engine (streams/indicators/engine.py), minus Kafka: one
``IndicatorPartition`` per valid topic, each record through ``apply`` (parse, enrich, meter
indexes, windows, dead letters) and, every ``flush_every`` records, each engine through
``flush`` (updates, derived ratios, producer activity, the records' keys and JSON, and the
checkpoint when due, a flush standing for a second of the agent's clock). Readings per
CPU-second, median of ``--runs``; prints a table and saves JSON in bench/results/. Four workloads:
``meter`` (one electricity meter every 10 s, the historical case), ``mix`` (a commune
partition's traffic: meters of several sectors and carriers with solar production, bike,
bus and car-sharing trips, charging sessions, car parks, air-quality stations), ``late``
(the mix's readings arriving a day late: every window they count in has closed, and is
corrected; its cost against ``mix`` is the cost of a late reading) and ``backlog`` (``late``
after each index meter's live index: every index arrives after a later one of its meter).
Target (indicator-engine issue): >= 100 000 readings/s per worker.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import fields
from datetime import UTC, datetime, timedelta
from typing import Any

from machine import describe
from results_file import print_figures, save_results

from reference.loader import load_reference
from schemas.catalogue import valid_topic
from schemas.indicator import IndicatorUpdate
from schemas.local_calendar import ZoneCalendar
from streams.indicators.engine import IndicatorPartition, ValidRecord
from streams.validation.engine import VALID_ARRAY
from streams.worker_config import WorkerConfig

START = datetime(2026, 11, 1, tzinfo=UTC)
Record = tuple[str, bytes]  # family, valid record


def _envelope(k: int, at: datetime, producer: str) -> dict[str, Any]:
    return {
        "event_id": f"e{k}",
        "producer_id": producer,
        "schema_version": 1,
        "event_time": at.isoformat(),
        "ingestion_time": (at + timedelta(seconds=1)).isoformat(),
    }


def _record(family: str, events: list[dict[str, Any]]) -> Record:
    """A valid record as the validation stage writes it (its adapter's canonical JSON)."""
    adapter = VALID_ARRAY[family]
    return family, adapter.dump_json(adapter.validate_json(json.dumps(events)), by_alias=True)


def _pack(family: str, events: list[dict[str, Any]], per_record: int) -> list[Record]:
    return [_record(family, events[i : i + per_record]) for i in range(0, len(events), per_record)]


def meter_records(readings: int, per_record: int) -> list[Record]:
    """Energy readings of one meter every 10 s, packed like the validation agent's output."""
    events = []
    for k in range(readings):
        at = START + timedelta(seconds=10 * k)
        event = _envelope(k, at, "enedis") | {
            "schema": "energy.reading",
            "meter_id": "elec-17300-0001",
            "commune": "17300",
            "sector": "residential",
            "carrier": "electricity",
            "quantity": 20.0 + k % 7,
            "unit": "Wh",
            "kind": "interval",
            "interval_start": (at - timedelta(seconds=10)).isoformat(),
        }
        events.append(event)
    return _pack("energy", events, per_record)


_METERS = [  # commune, sector, carrier, unit, kind
    (commune, sector, carrier, unit, kind)
    for commune in ("17300", "17028", "17306")
    for sector, carrier, unit, kind in (
        ("residential", "electricity", "Wh", "interval"),
        ("tertiary", "electricity", "kWh", "interval"),
        ("residential", "natural_gas", "kWh", "index"),
        ("public", "heat_network", "kWh", "interval"),
        ("industry", "heating_oil", "kWh", "interval"),
        ("residential", "solar_pv", "Wh", "interval"),
    )
]


def _energy(
    k: int, at: datetime, rng: random.Random, indexes: dict[str, tuple[float, datetime]]
) -> dict[str, Any]:
    slot = rng.randrange(len(_METERS) * 4)
    commune, sector, carrier, unit, kind = _METERS[slot % len(_METERS)]
    meter = f"m{slot}-{commune}"
    quantity = round(rng.uniform(0.1, 3.0), 3)
    event = _envelope(k, at, "enedis") | {
        "schema": "energy.reading", "meter_id": meter, "commune": commune, "sector": sector,
        "carrier": carrier, "unit": unit, "kind": kind,
    }  # fmt: skip
    if kind == "index":
        # A gas meter's index grows with what it delivered since its last reading, at a
        # plausible power (0.5 to 20 kW), so validation and the index rules accept it.
        index, last = indexes.get(meter, (1000.0, at))
        index += rng.uniform(0.5, 20.0) * (at - last).total_seconds() / 3600
        indexes[meter] = (index, at)
        return event | {"quantity": round(index, 6)}
    return event | {"quantity": quantity, "interval_start": (at - timedelta(seconds=10)).isoformat()}


def _mobility(k: int, at: datetime, rng: random.Random) -> dict[str, Any]:
    commune = rng.choice(("17300", "17300", "17028", "17306"))
    base = _envelope(k, at, "yelo") | {
        "schema": "mobility.event",
        "device_id": f"d{k % 40}",
        "commune": commune,
    }
    started = (at - timedelta(minutes=12)).isoformat()
    pick = rng.random()
    if pick < 0.35:
        return base | {"kind": "bike_trip", "started_at": started, "distance_km": 3.2, "electric": pick < 0.1}
    if pick < 0.55:
        return base | {"kind": "transit_trip", "started_at": started, "distance_km": 8.5,
                       "mode": "bus", "line": "L1", "passengers": rng.randrange(1, 40)}  # fmt: skip
    if pick < 0.65:
        return base | {
            "kind": "carsharing_trip",
            "started_at": started,
            "distance_km": 11.0,
            "electric": True,
        }
    if pick < 0.75:
        return base | {"kind": "ev_charging_session", "started_at": started, "energy_kwh": 14.0}
    return base | {
        "kind": "parking_occupancy",
        "occupied_spot_number": rng.randrange(200),
        "total_spot_number": 200,
    }


def _environment(k: int, at: datetime, rng: random.Random) -> dict[str, Any]:
    quantity, unit = rng.choice(
        (("pm25", "ug/m3"), ("pm10", "ug/m3"), ("no2", "ug/m3"), ("temperature", "Cel"))
    )
    return _envelope(k, at, "atmo") | {
        "schema": "environment.reading", "sensor_id": f"aq-{k % 3}", "commune": "17300",
        "quantity": quantity, "value": round(rng.uniform(2.0, 40.0), 2), "unit": unit,
    }  # fmt: skip


def mix_records(readings: int, per_record: int) -> list[Record]:
    """A commune partition's mixed traffic (70 % energy, 20 % mobility, 10 % environment),
    20 readings a second of event time, each family's records in arrival order."""
    rng = random.Random(5)
    indexes: dict[str, tuple[float, datetime]] = {}
    pending: dict[str, list[dict[str, Any]]] = {"energy": [], "mobility": [], "environment": []}
    records: list[Record] = []
    for k in range(readings):
        at = START + timedelta(milliseconds=50 * k)
        pick = rng.random()
        family = "energy" if pick < 0.7 else "mobility" if pick < 0.9 else "environment"
        if family == "energy":
            pending[family].append(_energy(k, at, rng, indexes))
        elif family == "mobility":
            pending[family].append(_mobility(k, at, rng))
        else:
            pending[family].append(_environment(k, at, rng))
        if len(pending[family]) == per_record:
            records.append(_record(family, pending[family]))
            pending[family] = []
    records += [_record(family, events) for family, events in pending.items() if events]
    return records


def late_records(readings: int, per_record: int) -> list[Record]:
    """The mix's readings, all late: each family's partition first hears from a device a day
    ahead of them, as a backfill of yesterday meets a running platform (every window they
    fall in has closed; each is corrected, exactly as the same readings on time would fill it)."""
    ahead = START + timedelta(days=1)
    rng = random.Random(7)
    live = _envelope(-1, ahead, "enedis") | {
        "schema": "energy.reading", "meter_id": "live-17300", "commune": "17300", "sector": "residential",
        "carrier": "electricity", "quantity": 1.0, "unit": "kWh", "kind": "interval",
        "interval_start": (ahead - timedelta(seconds=10)).isoformat(),
    }  # fmt: skip
    first = [
        _record("energy", [live]),
        _record("mobility", [_mobility(-2, ahead, rng)]),
        _record("environment", [_environment(-3, ahead, rng)]),
    ]
    return first + mix_records(readings - len(first), per_record)


def backlog_records(readings: int, per_record: int) -> list[Record]:
    """``late``, where each gas meter sent its live index first, a day ahead: every index of
    its backlog then arrives after a later one, splits that one's delta and recounts it
    (streams/indicators/meter_indexes.py). Against ``late``: the cost of a late index."""
    ahead = START + timedelta(days=1)
    live = [
        _envelope(-10 - slot, ahead, "enedis")
        | {
            "schema": "energy.reading",
            "meter_id": f"m{slot}-{commune}",
            "commune": commune,
            "sector": sector,
            "carrier": carrier,
            "unit": unit,
            "kind": kind,
            "quantity": 1000.0 + 10.0 * 24,  # 10 kW on average since the backlog's first index
        }
        for slot in range(len(_METERS) * 4)
        for commune, sector, carrier, unit, kind in [_METERS[slot % len(_METERS)]]
        if kind == "index"
    ]
    return [_record("energy", live), *late_records(readings - len(live), per_record)]


WORKLOADS: dict[str, Callable[[int, int], list[Record]]] = {
    "meter": meter_records,
    "mix": mix_records,
    "late": late_records,
    "backlog": backlog_records,
}


# The worker's defaults: the benchmark checkpoints as often as the agent does.
_WORKER_DEFAULTS = {f.name: f.default for f in fields(WorkerConfig)}
CHECKPOINT_SECONDS: float = _WORKER_DEFAULTS["checkpoint_seconds"]
GRACE_SECONDS: int = _WORKER_DEFAULTS["grace_seconds"]
FLUSH_SECONDS: float = _WORKER_DEFAULTS["flush_seconds"]
ZONE = ZoneCalendar(_WORKER_DEFAULTS["time_zone"])  # local days, as the worker cuts them


def valid_records(records: list[Record]) -> list[ValidRecord]:
    """The workload as the agent reads it: each family's records in order on partition 0 of
    its valid topic."""
    offsets: Counter[str] = Counter()
    read = []
    for family, value in records:
        read.append(ValidRecord(valid_topic(family), 0, offsets[family], b"17300", value))
        offsets[family] += 1
    return read


def run_once(
    records: list[Record],
    flush_every: int,
    collect: list[IndicatorUpdate] | None = None,
    checkpoint_seconds: float = CHECKPOINT_SECONDS,
) -> tuple[float, int, int, int]:
    """CPU seconds, indicator updates, dead letters and late readings for one pass;
    ``flush_every`` records between flushes (the agent flushes once a second, about 20
    records of 500 readings at 10 000 readings/s); the updates are appended to ``collect``
    when given (what the agent would send)."""
    ref = load_reference()
    read = valid_records(records)
    engines: dict[str, IndicatorPartition[int]] = {
        topic: IndicatorPartition(
            topic, 0, grace_seconds=GRACE_SECONDS, checkpoint_seconds=checkpoint_seconds, zone=ZONE
        )
        for topic in dict.fromkeys(r.topic for r in read)
    }
    now = datetime.now(UTC)
    updates = flushes = dead = 0
    t0 = time.process_time()
    for n, record in enumerate(read, 1):
        engines[record.topic].apply(record, ref, now, record.offset)
        if n % flush_every == 0 or n == len(read):
            flushes += 1
            for engine in engines.values():
                published = engine.flush(now, flushes * FLUSH_SECONDS, ref)
                updates += len(published.updates)
                dead += len(published.dead_letters)
                if published.checkpoint is not None:  # delivered, as far as this benchmark goes
                    engine.checkpoint_delivered()
                if collect is not None:
                    collect += [IndicatorUpdate.model_validate_json(value) for _, value in published.updates]
    cpu = time.process_time() - t0
    late = sum(engine.state.windows.late for engine in engines.values())
    return cpu, updates, dead, late


def run(
    workload: str,
    readings: int,
    per_record: int,
    runs: int,
    flush_every: int = 20,
    checkpoint_seconds: float = CHECKPOINT_SECONDS,
) -> dict[str, object]:
    records = WORKLOADS[workload](readings, per_record)
    passes = [run_once(records, flush_every, checkpoint_seconds=checkpoint_seconds) for _ in range(runs)]
    cpu = statistics.median(p[0] for p in passes)
    return {
        "benchmark": "indicators",
        "workload": workload,
        "when": datetime.now(UTC).isoformat(),
        "machine": describe(),
        "readings": readings,
        "readings_per_record": per_record,
        "indicator_updates": passes[0][1],
        "dead_letters": passes[0][2],
        "late_readings": passes[0][3],
        "runs": runs,
        "checkpoint_seconds": checkpoint_seconds if math.isfinite(checkpoint_seconds) else None,
        "cpu_seconds_median": round(cpu, 3),
        "readings_per_cpu_second": round(readings / cpu),
        "readings_per_cpu_second_each": [round(readings / p[0]) for p in passes],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--readings", type=int, default=100_000)
    parser.add_argument("--per-record", type=int, default=500)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workload", choices=[*WORKLOADS, "all"], default="all")
    parser.add_argument(
        "--checkpoint-seconds",
        type=float,
        default=CHECKPOINT_SECONDS,
        help="a checkpoint every so many flushes (a flush is a second); inf: none",
    )
    args = parser.parse_args()
    for workload in WORKLOADS if args.workload == "all" else [args.workload]:
        result = run(
            workload, args.readings, args.per_record, args.runs, checkpoint_seconds=args.checkpoint_seconds
        )
        print_figures(result)
        print()
        save_results(f"indicators-{workload}", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
