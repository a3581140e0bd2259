"""The live probe's arithmetic (``live_probe.py``): what reading k carries, which update of
zc.indicators first includes it, and the delays per phase of the soak. Pure: no I/O.

Reading k of the probe is one air-quality value (NO2) of one registered station no
simulated device uses: its series (commune x station x quantity) is its own. It lands in a
15-minute window of its own, with a value of its own (``reading_value``), so an update of
that window includes the reading exactly when the update's value is the reading's: a
window's value is the mean of its readings, and it holds no other.

Its event time is not now: the territory's device clocks run about 300 times faster than
the wall clock, behind it, and the partition's watermark, frontier and producer activity
would jump to a reading stamped now (docs/indicators.md, "The finality rule"), turning
simulated readings late. The probe's readings are stamped behind everything the
simulators send (``probe_slots``), under the station's registered producer, which the
simulated stations share: they are late, correct windows no one else fills, and move no
watermark and no producer's progress. Being late changes one branch of the engine (a
closed window looked up, microseconds), not what the delay is made of: the queues before
the worker and the flush that publishes, which a live reading of the same partition waits
for as well. Each update's Kafka key is the worker's own (``indicator_record``), and only
the windows whose key falls on one partition of zc.indicators are used, so that the probe
reads a quarter of the topic; so a reading a second goes back about a day of event time
every 24 readings, some 2.5 hours of soak before validation's 400 days.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiokafka.partitioner import murmur2
from pydantic_core import to_json

from schemas.environment import EnvironmentReading, EnvQuantity
from streams.indicators.catalogue import indicator_record
from streams.indicators.enrichment import Dimensions, environment_measures
from streams.indicators.window_state import WindowUpdate

SLOT_SECONDS = 900
"""The window that identifies a reading: minute windows behind the watermark by more than
48 hours are past their correction horizon and never emitted; 15-minute windows are kept
402 days (streams/indicators/window_state.py, ``CORRECTION_HORIZON_SECONDS``)."""
OFFSET_IN_SLOT = 420  # a reading's event time within its window: any instant in it would do
QUANTITY = EnvQuantity.NO2
VALUES = 1999  # distinct values 1..1999 µg/m3, within validation's NO2 range [0, 2000]
OLDEST_DAYS = 390
"""Validation refuses readings more than 400 days old; the probe stops short of that."""
PERCENTILES = (50, 95, 99)


@dataclass(frozen=True, slots=True)
class ProbeDevice:
    """The station the probe publishes as, as the device registry lists it."""

    device_id: str
    commune: str
    producer_id: str

    @property
    def topic(self) -> str:
        return f"zc/{self.commune}/environment/{self.device_id}"


@dataclass(frozen=True, slots=True)
class ProbeReading:
    """Reading ``k``: its event time (epoch seconds), its value, when it was published (epoch)."""

    k: int
    event_time: int
    value: float
    published_at: float

    @property
    def slot(self) -> int:
        return self.event_time - self.event_time % SLOT_SECONDS


@dataclass(frozen=True, slots=True)
class SeenUpdate:
    """An update of the probe's series on zc.indicators, as the probe's consumer saw it."""

    window_start: int
    value: float
    final: bool
    revision: int
    kafka_at: float  # the record's timestamp: when the worker handed it to Kafka (epoch)
    received_at: float  # when the probe's consumer had it (epoch)
    flushed_at: float  # the update's updated_at: the worker's flush that computed it


def reading_value(k: int) -> float:
    return float(1 + k % VALUES)


def event(device: ProbeDevice, k: int, event_time: int, value: float, run: str) -> EnvironmentReading:
    """Reading ``k`` as the contract says it (its event id names the run and k)."""
    return EnvironmentReading(
        event_id=f"{device.device_id}-probe-{run}-{k}",
        producer_id=device.producer_id,
        event_time=datetime.fromtimestamp(event_time, UTC),
        sensor_id=device.device_id,
        commune=device.commune,
        quantity=QUANTITY,
        value=value,
        unit="ug/m3",
    )


def payload(device: ProbeDevice, k: int, event_time: int, value: float, run: str) -> bytes:
    return event(device, k, event_time, value, run).model_dump_json(by_alias=True, exclude_none=True).encode()


def series_dimensions(device: ProbeDevice) -> Dimensions:
    """The dimensions the worker gives the probe's readings (its enrichment, not a copy)."""
    (measure,) = environment_measures(event(device, 0, 0, 1.0, "dims"))
    return measure.dimensions


def update_key(dimensions: Dimensions, slot: int) -> bytes:
    """The Kafka key of the 15-minute update of ``slot``, as the worker writes it."""
    update = WindowUpdate("environment_value", dimensions, SLOT_SECONDS, slot, 1.0, 1, False, 0)
    now = datetime.fromtimestamp(slot, UTC)
    key, _ = indicator_record(update, now, to_json(now))
    return key


def key_partition(key: bytes, partitions: int) -> int:
    """The partition the worker's producer gives ``key`` (aiokafka's default partitioner)."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def probe_slots(anchor: int, oldest: int, accept: Callable[[int], bool]) -> Iterator[int]:
    """15-minute window starts ending at or before ``anchor``, newest first, down to ``oldest``,
    those ``accept`` takes: reading k goes in the k-th."""
    slot = anchor - anchor % SLOT_SECONDS - SLOT_SECONDS
    while slot >= oldest:
        if accept(slot):
            yield slot
        slot -= SLOT_SECONDS


def includes(update: SeenUpdate, reading: ProbeReading) -> bool:
    """Whether ``update`` is of the reading's window and its value counts the reading."""
    return update.window_start == reading.slot and abs(update.value - reading.value) <= 1e-6


class ProbeMatcher:
    """The readings published so far and, for each, the first update seen (in the order the
    consumer reads them) that includes it."""

    def __init__(self) -> None:
        self.readings: list[ProbeReading] = []
        self.matched: dict[int, SeenUpdate] = {}
        self._by_slot: dict[int, ProbeReading] = {}

    def published(self, reading: ProbeReading) -> None:
        self.readings.append(reading)
        self._by_slot[reading.slot] = reading

    def seen(self, update: SeenUpdate) -> ProbeReading | None:
        """Note ``update``; the reading it is the first to include, if any."""
        reading = self._by_slot.get(update.window_start)
        if reading is None or reading.k in self.matched or not includes(update, reading):
            return None
        self.matched[reading.k] = update
        return reading

    def all_matched(self) -> bool:
        return len(self.matched) == len(self.readings)


def delays(reading: ProbeReading, update: SeenUpdate) -> dict[str, float]:
    """Seconds from the reading's publication to: the worker's flush that counted it, its
    update on zc.indicators, and the probe's consumer having it."""
    return {
        "flush": round(update.flushed_at - reading.published_at, 3),
        "indicators": round(update.kafka_at - reading.published_at, 3),
        "received": round(update.received_at - reading.published_at, 3),
    }


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q`` percentile (0-100), nearest rank: the smallest value with at least q % of the
    values at or below it; None without values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered), max(1, math.ceil(q * len(ordered) / 100))) - 1]


def summary(values: Sequence[float]) -> dict[str, float | int | None]:
    """Count, p50, p95, p99 and max of some delays."""
    out: dict[str, float | int | None] = {"count": len(values)}
    for q in PERCENTILES:
        out[f"p{q}"] = percentile(values, q)
    out["max"] = max(values, default=None)
    return out


def phase_at(at: float, marks: Sequence[tuple[float, str]]) -> str | None:
    """The phase ``marks`` (instant it began, name; in order) says was under way at ``at``."""
    current = None
    for began, name in marks:
        if began > at:
            break
        current = name
    return current


def live_phase(
    elapsed: float, warmup_seconds: float, live_running: bool, backfill_started: bool, backfill_running: bool
) -> str:
    """The soak's phase as the probe's figures are split: the warm-up, the live load alone,
    with a backfill, a backfill after the live load ended, the live load after a backfill."""
    if backfill_running:
        return "backfill" if live_running else "backfill, live load over"
    if backfill_started:
        return "after backfill"
    return "warm-up" if elapsed < warmup_seconds else "load"


def per_phase(
    readings: Sequence[ProbeReading],
    matched: Mapping[int, SeenUpdate],
    marks: Sequence[tuple[float, str]],
) -> dict[str, dict[str, Any]]:
    """Per phase (by the instant each reading was published), in order: readings published,
    how many an update included, and the summary of each delay of ``delays``."""
    phases: dict[str, list[ProbeReading]] = {name: [] for _, name in marks}
    for reading in readings:
        phase = phase_at(reading.published_at, marks)
        if phase is not None:
            phases[phase].append(reading)
    out: dict[str, dict[str, Any]] = {}
    for name, members in phases.items():
        if not members:
            continue
        found = [delays(r, matched[r.k]) for r in members if r.k in matched]
        out[name] = {
            "published": len(members),
            "matched": len(found),
            **{kind: summary([d[kind] for d in found]) for kind in ("indicators", "received", "flush")},
        }
    return out
