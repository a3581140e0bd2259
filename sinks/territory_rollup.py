"""The territory's year-to-date emissions, gross and net, against its trajectory.

Partitions hold communes whole, so the territory is the sum over every series of the
latest year-to-date emissions its partition published. This fold keeps that latest value
per series (a later update of a series replaces it, so replays and repeats do no harm)
and gives, per year:
- ``territory_emissions_kgco2e`` (ytd): Σ ``emissions_kgco2e`` + ``mobility_emissions_kgco2e``
  + ``ev_charging_emissions_kgco2e``;
- ``territory_trajectory_target_kgco2e`` (ytd): the gross path's value for the year
  (sinks/carbon_trajectory.py, reference/data/trajectory.csv) times the share of the year
  elapsed at ``now``;
- ``territory_trajectory_ratio`` (ytd): emissions / target (below 1: on track);
- ``territory_sequestration_kgco2e`` (ytd): what the sinks absorb in the year, as declared
  (reference/data/sequestration.csv), times the share of the year elapsed;
- ``territory_net_emissions_kgco2e`` (ytd): emissions minus sequestration;
- ``territory_net_trajectory_target_kgco2e`` (ytd): the net path's value (to zero in 2040)
  times the share elapsed;
- ``territory_net_trajectory_ratio`` (ytd): net emissions / net target, while that target is
  above zero (in 2040 it is zero: the net emissions themselves say how far from neutral).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from config.kafka_access import KafkaAccess
from schemas.catalogue import INDICATOR_TOPIC
from schemas.indicator import IndicatorUpdate, series_key
from schemas.local_calendar import UTC_CALENDAR, Calendar
from sinks.carbon_trajectory import Trajectory

EMISSIONS = ("emissions_kgco2e", "mobility_emissions_kgco2e", "ev_charging_emissions_kgco2e")
OURS = (
    "territory_emissions_kgco2e",
    "territory_trajectory_target_kgco2e",
    "territory_trajectory_ratio",
    "territory_sequestration_kgco2e",
    "territory_net_emissions_kgco2e",
    "territory_net_trajectory_target_kgco2e",
    "territory_net_trajectory_ratio",
)


def year_fraction(now: datetime, calendar: Calendar = UTC_CALENDAR) -> float:
    """The share of ``now``'s year (``calendar``'s) elapsed."""
    year = calendar.year_of(int(now.timestamp()))
    start, end = calendar.year_start(year), calendar.year_start(year + 1)
    return (now.timestamp() - start) / (end - start)


@dataclass
class TerritoryRollup:
    trajectory: Trajectory
    # Whose years the year to date counts (the worker's ZC_TIME_ZONE): the local year 2027
    # begins at 2026-12-31T23:00:00Z in Paris, so a window_start's year is not its first digits.
    calendar: Calendar = UTC_CALENDAR
    latest: dict[bytes, tuple[int, float]] = field(default_factory=dict)  # series key -> (year, value)
    changed: set[int] = field(default_factory=set)
    # Records that look like ytd emissions but are not readable updates: skipped (the sink
    # dead-letters them). Raising here ended the rollup, and with it the sink process, at
    # every restart: the fold re-reads the topic from its beginning.
    unreadable: int = 0

    def offer(self, key: bytes, value: bytes) -> None:
        """One record of zc.indicators; only year-to-date emissions of a series matter."""
        if b'"window":"ytd"' not in value or not any(name.encode() in value for name in EMISSIONS):
            return
        try:
            update = json.loads(value)
            if update["indicator"] not in EMISSIONS:
                return
            start = datetime.fromisoformat(update["window_start"].replace("Z", "+00:00"))
            year = self.calendar.year_of(int(start.timestamp()))
            emitted = float(update["value"])
        except (ValueError, KeyError, TypeError):
            self.unreadable += 1
            return
        if self.latest.get(key) != (year, emitted):
            self.latest[key] = (year, emitted)
            self.changed.add(year)

    def updates(self, now: datetime) -> list[IndicatorUpdate]:
        """The territory's figures of every year that changed since the last call."""
        out = []
        calendar = self.calendar
        this_year = calendar.year_of(int(now.timestamp()))
        for year in sorted(self.changed):
            total = sum(v for y, v in self.latest.values() if y == year)
            elapsed = 1.0 if year < this_year else year_fraction(now, calendar)
            target = self.trajectory.annual_target(year) * elapsed
            sequestered = self.trajectory.sequestered(year) * elapsed
            net, net_target = total - sequestered, self.trajectory.net.target(year) * elapsed
            start = datetime.fromtimestamp(calendar.year_start(year), UTC)
            end = min(now, datetime.fromtimestamp(calendar.year_start(year + 1), UTC))
            figures: list[tuple[str, str, float]] = [
                (OURS[0], "kgCO2e", total),
                (OURS[1], "kgCO2e", target),
                (OURS[2], "ratio", total / target if target else 0.0),
                (OURS[3], "kgCO2e", sequestered),
                (OURS[4], "kgCO2e", net),
                (OURS[5], "kgCO2e", net_target),
            ]
            if net_target > 0:
                figures.append((OURS[6], "ratio", net / net_target))
            for name, unit, value in figures:
                out.append(
                    IndicatorUpdate(
                        indicator=name, unit=unit, window="ytd", window_start=start, window_end=end,
                        dimensions={}, value=value, final=year < this_year, updated_at=now,
                    )
                )  # fmt: skip
        self.changed.clear()
        return out


async def run_territory_rollup(
    kafka: KafkaAccess, stop: asyncio.Event, trajectory: Trajectory, calendar: Calendar = UTC_CALENDAR
) -> None:
    """Fold every partition of zc.indicators from its beginning (the compacted topic keeps the
    latest update of each series) and publish the territory's figures once a second."""
    consumer = AIOKafkaConsumer(**kafka.client_options(), enable_auto_commit=False)
    producer = AIOKafkaProducer(**kafka.client_options(), acks="all", enable_idempotence=True)
    await consumer.start()
    await producer.start()
    try:
        partitions = [
            TopicPartition(INDICATOR_TOPIC, p) for p in sorted(await producer.partitions_for(INDICATOR_TOPIC))
        ]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        rollup = TerritoryRollup(trajectory, calendar)
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=1000, max_records=50_000)
            for records in batches.values():
                for record in records:
                    if record.value is not None and record.key is not None:
                        rollup.offer(record.key, record.value)
            for update in rollup.updates(datetime.now(UTC)):
                await producer.send(
                    INDICATOR_TOPIC, update.model_dump_json(by_alias=True).encode(), key=series_key(update)
                )
    finally:
        await consumer.stop()
        await producer.stop()
