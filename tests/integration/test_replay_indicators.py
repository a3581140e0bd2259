"""Replaying each shipped data file gives the hourly indicators one computes from the file by hand.

One test per shipped mapping (sensors/mappings/): replay the excerpt it names (in
sensors/replay_data/, so a clean clone has it) straight to Kafka as an operator would, with
no FILE argument (``python -m zerocarbon.cli replay --mapping NAME --to kafka --fast``),
compute the hourly figures from the raw CSV with the standard library only, and compare every
final hourly value of the replayed series on zc.indicators, to 6 decimals.

The expectation does not use sensors/: the mappings' documented choices (docs/devices.md and
the comments of each mapping: columns, units, time zone, devices and their communes, the
shift rule) are re-implemented below in a few lines each, so a mistake in a mapping or in the
replay shows as a difference. Sums and means are exact (fractions of the file's decimals).

Set-up choices:
- Windows close on each partition's watermark. The indicator state of the partitions the
  files' communes land on is forgotten before the module's worker starts, so only the
  replay's own event times move them, and each file's own later rows close the hours
  compared: an hour is compared when its partition's last reading is at least its end plus
  the grace; the last hour or two of each partition stay open and are not compared.
- Event ids. Replay builds them from the producer, the device and the row's original time,
  so every replay of a file gives the same ids, by design: a second replay is a duplicate.
  Validation's one-hour memory lives in the worker process and the forgotten state holds
  no ids, so the module's new worker would count them again anyway; the test still passes
  ``--id-suffix <run>`` so that its events cannot be taken for an earlier replay's (a worker
  left running, an earlier run's records still in a raw backlog).
- Shift: replay's default (whole weeks, the last row within the past week), read back from
  its report and checked against that rule.
"""

from __future__ import annotations

import asyncio
import csv
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from config.kafka_access import KafkaAccess
from config.settings import Settings
from schemas.partition_key import commune_partition
from tests.integration.golden_meters import (
    Series,
    forget_indicator_state,
    indicator_finals,
    indicator_offsets,
    series_of,
    window_differences,
)
from tests.integration.worker_runs import start_worker
from zerocarbon.processes import stop_child

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "sensors" / "replay_data"  # where the shipped mappings' `file` keys point
PARIS = ZoneInfo("Europe/Paris")
WEEK = 7 * 86400
HOUR = 3600


@dataclass(frozen=True)
class Reading:
    """What one row should become: its series, its commune, its event time and its value."""

    series: Series
    commune: str
    time: int  # epoch seconds, before the shift
    value: Fraction


@dataclass(frozen=True)
class HandReading:
    """A file's readings computed by hand, and the rows that give none."""

    readings: list[Reading]
    skipped: int


def household_power(path: Path) -> HandReading:
    """Sceaux minutes as meter elec-17094-0101 (residential, Châtelaillon-Plage 17094): kWh =
    mean kW / 60; d/m/yyyy and the minute's start on Paris wall clock; an interval reading
    counts in the window where it starts, so the reading's time is the minute's start; NA
    rows give no reading."""
    series = series_of({"carrier": "electricity", "commune": "17094", "sector": "residential"})
    readings, skipped = [], 0
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            kw = row["global_active_power"]
            if kw in ("", "NA", "?"):
                skipped += 1
                continue
            start = datetime.strptime(f"{row['date']} {row['time']}", "%d/%m/%Y %H:%M:%S")
            begins = int(start.replace(tzinfo=PARIS).timestamp())
            readings.append(Reading(series, "17094", begins, Fraction(kw) / 60))
    return HandReading(readings, skipped)


OPENAQ_STATIONS = {  # source location -> (our station, its commune)
    "FR04014": ("aq-17300-0101", "17300"),
    "London Westminster": ("aq-17028-0101", "17028"),
    "BETR801": ("aq-17274-0101", "17274"),
}


def openaq_long(path: Path) -> HandReading:
    """OpenAQ hourly NO2 and PM2.5 (µg/m³) of three stations; `date` is UTC and is the time."""
    readings = []
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            station, commune = OPENAQ_STATIONS[row["location"]]
            series = series_of({"commune": commune, "station": station, "quantity": row["parameter"]})
            at = datetime.strptime(row["date"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
            readings.append(Reading(series, commune, int(at.timestamp()), Fraction(row["value"])))
    return HandReading(readings, 0)


def larochelle_parking(path: Path) -> HandReading:
    """Car parks 4, 5, 16, 17 as parking-17300-00NN (La Rochelle 17300): occupancy ratio =
    (capacity - free places) / capacity; the time is Paris wall clock."""
    readings = []
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            car_park = f"parking-17300-{int(row['parc_id']):04d}"
            series = series_of({"commune": "17300", "car_park": car_park})
            at = datetime.strptime(row["timestamp_local"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=PARIS)
            capacity = int(row["nb_places"])
            ratio = Fraction(capacity - int(row["places_disponibles"]), capacity)
            readings.append(Reading(series, "17300", int(at.timestamp()), ratio))
    return HandReading(readings, 0)


@dataclass(frozen=True)
class ShippedFile:
    mapping: str
    path: Path
    family: str
    indicator: str
    mean: bool  # the hour's value is the mean of its readings, else their sum
    communes: frozenset[str]
    by_hand: Callable[[Path], HandReading]


HOUSEHOLD = ShippedFile(
    "household-power-sceaux",
    DATA / "household-power-sceaux" / "household_power_consumption_2007-02-22.csv",
    "energy",
    "energy_consumed_kwh",
    False,
    frozenset({"17094"}),
    household_power,  # 22 February 2007, the day of the month's two NA minutes
)
OPENAQ = ShippedFile(
    "air-quality-openaq",
    DATA / "air-quality-openaq" / "air_quality_long_2019-05-14_to_2019-05-20.csv",
    "environment",
    "environment_value",
    True,
    frozenset(commune for _, commune in OPENAQ_STATIONS.values()),
    openaq_long,  # 14-20 May 2019 (UTC), all five series
)
PARKING = ShippedFile(
    "larochelle-parking",
    DATA / "larochelle-parking" / "parking_availability_2016-03-18.csv",
    "mobility",
    "parking_occupancy_ratio",
    True,
    frozenset({"17300"}),
    larochelle_parking,  # 18 March 2016, and 20 minutes of the 19th that close the 18th's last hour
)
SHIPPED = (HOUSEHOLD, OPENAQ, PARKING)


def closed_hours(
    readings: list[Reading], shift: int, mean: bool, grace: int, partitions: int
) -> dict[Series, dict[int, float]]:
    """Each series' value per hour (start, epoch seconds, after the shift; a reading counts in
    the hour holding its time) for the hours its partition's last reading has closed."""
    watermark: dict[int, int] = {}
    hours: dict[Series, dict[int, list[Fraction]]] = {}
    for r in readings:
        t = r.time + shift
        partition = commune_partition(r.commune, partitions)
        watermark[partition] = max(watermark.get(partition, t), t)
        hours.setdefault(r.series, {}).setdefault(t - t % HOUR, []).append(r.value)
    partition_of = {r.series: commune_partition(r.commune, partitions) for r in readings}
    return {
        series: {
            start: float(round(sum(values) / (len(values) if mean else 1), 6))
            for start, values in by_start.items()
            if start + HOUR + grace <= watermark[partition_of[series]]
        }
        for series, by_start in hours.items()
    }


@pytest.fixture(scope="module")
def replay_worker(
    settings: Settings, kafka_admin: KafkaAccess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    """A worker started after the indicator state of every partition the shipped files'
    communes land on was forgotten (per family: each valid topic has its own state)."""
    for shipped in SHIPPED:
        partitions = {commune_partition(c, settings.kafka_partitions) for c in shipped.communes}
        asyncio.run(forget_indicator_state(kafka_admin, settings, partitions, shipped.family))
    proc = start_worker(tmp_path_factory.mktemp("replay-worker") / "worker.log")
    try:
        yield
    finally:
        stop_child(proc)


def replay(mapping: str, run: str) -> dict[str, Any]:
    """`zerocarbon replay --mapping MAPPING` (its shipped file) to Kafka, as fast as possible;
    its report."""
    done = subprocess.run(
        [
            *(sys.executable, "-m", "zerocarbon.cli", "replay"),
            *("--mapping", mapping, "--to", "kafka", "--fast", "--id-suffix", run),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    return report


async def replayed_hours_match_the_file(
    kafka: KafkaAccess, settings: Settings, shipped: ShippedFile
) -> dict[Series, int]:
    """Replay ``shipped``'s rows, compare every closed hour with the hand figures; hours
    compared per series."""
    by_hand = shipped.by_hand(shipped.path)
    since, offsets = datetime.now(UTC), await indicator_offsets(kafka, settings)
    report = replay(shipped.mapping, f"t{uuid.uuid4().hex[:10]}")
    now = time.time()
    assert Path(report["file"]).resolve() == shipped.path.resolve(), report  # the mapping's own file
    assert report["events"] == report["acknowledged"] == len(by_hand.readings), report
    assert sum(report["skipped"].values()) == by_hand.skipped, report
    # The shift rule: whole weeks, bringing the file's last reading into the past week.
    shift = round(report["shift_days"] * 86400)
    last = max(r.time for r in by_hand.readings)
    assert shift % WEEK == 0 and since.timestamp() - WEEK < last + shift <= now, report
    expected = closed_hours(
        by_hand.readings, shift, shipped.mean, settings.indicator_grace_seconds, settings.kafka_partitions
    )
    finals = await indicator_finals(kafka, settings, shipped.indicator, "1h", expected, since, 180, offsets)
    assert finals == expected, window_differences(finals, expected, lambda series: str(dict(series)))
    return {series: len(hours) for series, hours in expected.items()}


async def test_household_power_gives_the_hourly_kwh_of_the_file(
    settings: Settings, kafka_admin: KafkaAccess, replay_worker: None
) -> None:
    """22 February 2007 (1 440 minutes): 23 hourly kWh of one residential series, each the
    sum of the hour's minutes (mean kW / 60). The two NA minutes (22:58-22:59) are skipped by
    replay and by hand, so that hour sums 58 minutes; the last hour stays open.

    A minute counts in the hour where it starts (an interval reading's window is that of its
    interval_start): hour [H, H+1) holds the clock hour's 60 minutes.
    """
    counted = await replayed_hours_match_the_file(kafka_admin, settings, HOUSEHOLD)
    assert list(counted.values()) == [24 - 1]


async def test_openaq_gives_the_hourly_means_of_the_file(
    settings: Settings, kafka_admin: KafkaAccess, replay_worker: None
) -> None:
    """14-20 May 2019: every closed hour of the five station x quantity series (NO2 of three
    stations, PM2.5 of two); one reading per hour and series, so the mean is its value. Only
    the last hour or two of a partition stay open: at most two hours per series go uncompared."""
    counted = await replayed_hours_match_the_file(kafka_admin, settings, OPENAQ)
    readings = len(openaq_long(OPENAQ.path).readings)
    assert len(counted) == 5 and sum(counted.values()) >= readings - 2 * 5, (readings, counted)


async def test_larochelle_parking_gives_the_hourly_occupancy_of_the_file(
    settings: Settings, kafka_admin: KafkaAccess, replay_worker: None
) -> None:
    """18 March 2016: every hour of the four car parks, the mean over the hour's readings
    (about 60) of occupied / capacity, occupied = capacity - free places; the 19th's first
    20 minutes close the 18th's last hour. The file has no row from 12:00 to 13:00 local:
    23 hours per car park."""
    counted = await replayed_hours_match_the_file(kafka_admin, settings, PARKING)
    assert list(counted.values()) == [23] * 4, counted
