"""Indicator benchmark: enrichment and windowed aggregation on one core, no broker.

What the indicator agent does per valid record, minus Kafka: parse the record's JSON array
of validated events, enrich each (factors, meter indexes), add them to the event-time
windows, and at each flush take the updates, derive the ratios (renewable share, modal
share, WHO exceedances) and build the IndicatorUpdate models. Readings per CPU-second,
median of ``--runs``; prints a table and saves JSON in bench/results/. Two workloads:
``meter`` (one electricity meter every 10 s, the historical case) and ``mix`` (a commune
partition's traffic: meters of several sectors and carriers with solar production, bike,
bus and car-sharing trips, charging sessions, car parks, air-quality stations).
Target (indicator-engine issue): >= 100 000 readings/s per worker.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from machine import describe
from pydantic_core import to_json
from results_file import save_results

from reference.loader import load_reference
from schemas.families import FAMILIES
from schemas.indicator import IndicatorUpdate
from streams.indicators.agent import contribute
from streams.indicators.catalogue import indicator_record, to_indicator_update
from streams.indicators.derived import derive
from streams.indicators.enrichment import Contribution
from streams.indicators.producer_activity import ProducerActivity, registered_devices
from streams.indicators.valid_records import VALID_RECORD_PARSERS
from streams.indicators.window_assignment import DEFAULT_WINDOWS_SECONDS
from streams.indicators.window_state import WindowState
from streams.indicators.window_state_codec import PartitionState
from streams.validation.agent import VALID_ARRAY

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


def _energy(k: int, at: datetime, rng: random.Random, indexes: dict[str, float]) -> dict[str, Any]:
    slot = rng.randrange(len(_METERS) * 4)
    commune, sector, carrier, unit, kind = _METERS[slot % len(_METERS)]
    meter = f"m{slot}-{commune}"
    quantity = round(rng.uniform(0.1, 3.0), 3)
    event = _envelope(k, at, "enedis") | {
        "schema": "energy.reading", "meter_id": meter, "commune": commune, "sector": sector,
        "carrier": carrier, "unit": unit, "kind": kind,
    }  # fmt: skip
    if kind == "index":
        indexes[meter] = indexes.get(meter, 1000.0) + quantity
        return event | {"quantity": round(indexes[meter], 3)}
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
    indexes: dict[str, float] = {}
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


WORKLOADS: dict[str, Callable[[int, int], list[Record]]] = {"meter": meter_records, "mix": mix_records}


def run_once(
    records: list[Record], flush_every: int, collect: list[IndicatorUpdate] | None = None
) -> tuple[float, int]:
    """CPU seconds and indicator updates for one pass; ``flush_every`` records between flushes
    (the agent flushes once a second, about 20 records of 500 readings at 10 000 readings/s);
    the updates are appended to ``collect`` when given (what the agent would send)."""
    ref = load_reference()
    state = PartitionState(WindowState(DEFAULT_WINDOWS_SECONDS, 300), activity=ProducerActivity(300))
    assert state.activity is not None
    registered = registered_devices(ref.devices)
    who = ref.who_daily_guidelines
    now = datetime.now(UTC)
    updates = sent = 0
    t0 = time.process_time()
    for n, (family, record) in enumerate(records, 1):
        events = VALID_RECORD_PARSERS[family].validate_json(record)
        state.activity.add_events(events, FAMILIES[family].device_field)
        contributions = [contribute(state, event, ref) for event in events]
        state.windows.add_all(c for c in contributions if isinstance(c, Contribution))
        if n % flush_every == 0 or n == len(records):
            flushed = state.windows.flush()
            flushed += derive(flushed, state.windows, who)
            flushed += state.activity.flush(registered)
            now_json = to_json(now)
            for update in flushed:  # as the agent's flush, minus the send
                key, value = indicator_record(update, now, now_json)
                sent += len(key) + len(value)
                if collect is not None:
                    collect.append(to_indicator_update(update, now))
            updates += len(flushed)
    return time.process_time() - t0, updates


def run(workload: str, readings: int, per_record: int, runs: int, flush_every: int = 20) -> dict[str, object]:
    records = WORKLOADS[workload](readings, per_record)
    passes = [run_once(records, flush_every) for _ in range(runs)]
    cpu = statistics.median(p[0] for p in passes)
    return {
        "benchmark": "indicators",
        "workload": workload,
        "when": datetime.now(UTC).isoformat(),
        "machine": describe(),
        "readings": readings,
        "readings_per_record": per_record,
        "indicator_updates": passes[0][1],
        "runs": runs,
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
    args = parser.parse_args()
    for workload in WORKLOADS if args.workload == "all" else [args.workload]:
        result = run(workload, args.readings, args.per_record, args.runs)
        for key, value in result.items():
            if key != "machine":
                print(f"{key:<28} {value}")
        print()
        save_results(f"indicators-{workload}", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
