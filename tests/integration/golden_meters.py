"""The golden-tests meters (registry: reference/data/devices.csv, producer golden-tests) and
what the indicator tests need around them: readings with a known arithmetic, their hourly
totals, and reading the finals back.

Readings are partitioned by commune (schemas/partition_key.py). A meter whose commune's
partition had its indicator state started afresh at the partition's end before the
module's worker started (``forget_indicator_state``) sees only the module's event times:
windows close on its own watermark and its totals are exactly the test's arithmetic.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TypeVar
from zoneinfo import ZoneInfo

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from config.kafka_access import KafkaAccess
from config.settings import Settings
from schemas.catalogue import INDICATOR_TOPIC, raw_topic
from schemas.local_calendar import ZoneCalendar
from schemas.partition_key import commune_partition
from streams.indicators.checkpoints import start_afresh


@dataclass(frozen=True)
class GoldenMeter:
    meter_id: str
    commune: str
    sector: str

    @property
    def series(self) -> dict[str, str]:
        return {"carrier": "electricity", "commune": self.commune, "sector": self.sector}

    def partition(self, settings: Settings) -> int:
        return commune_partition(self.commune, settings.kafka_partitions)


# One commune per partition of 4 (Châtelaillon-Plage 0, Angoulins 1, Aytré 2, Périgny 3).
METERS = [
    GoldenMeter("golden-17094-0001", "17094", "industry"),
    GoldenMeter("golden-17010-0001", "17010", "public"),
    GoldenMeter("golden-17028-0001", "17028", "industry"),
    GoldenMeter("golden-17274-0001", "17274", "tertiary"),
]
# The same series as METERS[2] (commune, sector, carrier), from another device.
TWIN = GoldenMeter("golden-17028-0011", "17028", "industry")
RESIDENTIAL = GoldenMeter("golden-17028-0008", "17028", "residential")
TERTIARY = GoldenMeter("golden-17028-0002", "17028", "tertiary")


@dataclass(frozen=True)
class IntervalSeries:
    """Reading k of ``meter`` ends at ``start + step * (k + 1)`` and holds ``wh(k)`` Wh."""

    meter: GoldenMeter
    run: str
    start: datetime
    step: timedelta
    wh: Callable[[int], int]

    def end(self, k: int) -> datetime:
        return self.start + self.step * (k + 1)

    def records(self, ks: range, per_record: int = 50) -> list[bytes]:
        """JSON arrays of ``per_record`` readings, as a partner would publish them."""
        events = [
            {
                "event_id": f"{self.run}-{self.meter.meter_id}-{k}", "producer_id": "golden-tests",
                "event_time": self.end(k).isoformat(), "meter_id": self.meter.meter_id,
                "commune": self.meter.commune, "sector": self.meter.sector, "carrier": "electricity",
                "quantity": self.wh(k), "unit": "Wh", "kind": "interval",
                "interval_start": (self.end(k) - self.step).isoformat(),
            }
            for k in ks
        ]  # fmt: skip
        return [json.dumps(events[i : i + per_record]).encode() for i in range(0, len(events), per_record)]

    def closer(self, count: int) -> list[bytes]:
        """One reading starting two hours after reading ``count - 1`` ends (a reading is placed
        where its interval starts): every hour before closes."""
        later = IntervalSeries(
            self.meter, self.run + "-closer", self.end(count - 1) + timedelta(hours=2), self.step, self.wh
        )
        return later.records(range(1))

    def hourly_kwh(self, count: int) -> dict[int, float]:
        """Energy of each hour holding readings 0..count-1 (an interval reading counts in the
        hour where it starts), by the hour's start in epoch seconds; the closer closes the last."""
        totals: dict[int, float] = {}
        for k in range(count):
            hour = int((self.end(k) - self.step).timestamp()) // 3600 * 3600
            totals[hour] = totals.get(hour, 0.0) + self.wh(k) / 1000
        return {hour: round(kwh, 6) for hour, kwh in totals.items()}

    def daily_kwh(self, count: int, calendar: ZoneCalendar, grace: int) -> dict[int, float]:
        """Energy of each local day of ``calendar`` holding readings 0..count-1 whose end (and
        ``grace``) the closer passes, by the day's start in epoch seconds: computed from the zone
        database's local dates, not from the engine's calendar."""
        zone = ZoneInfo(calendar.name)
        closer = int((self.end(count - 1) + timedelta(hours=2) - self.step).timestamp())
        totals: dict[date, float] = {}
        for k in range(count):
            day = (self.end(k) - self.step).astimezone(zone).date()
            totals[day] = totals.get(day, 0.0) + self.wh(k) / 1000
        by_start = {}
        for day, kwh in totals.items():
            start = int(datetime(day.year, day.month, day.day, tzinfo=zone).timestamp())
            nxt = day + timedelta(days=1)
            if int(datetime(nxt.year, nxt.month, nxt.day, tzinfo=zone).timestamp()) + grace <= closer:
                by_start[start] = round(kwh, 6)
        return by_start


def merged_records(series: list[IntervalSeries], ks: range, per_record: int = 50) -> list[bytes]:
    """The readings of several series of one partition in event-time order, as arrays: one
    meter's readings never fall behind the partition's watermark because of another's."""
    events = sorted(
        (event for s in series for record in s.records(ks, per_record=1) for event in json.loads(record)),
        key=lambda e: (e["event_time"], e["meter_id"]),
    )
    return [json.dumps(events[i : i + per_record]).encode() for i in range(0, len(events), per_record)]


async def produce_raw(kafka: KafkaAccess, meter: GoldenMeter, values: Iterable[bytes]) -> None:
    """Produce to zc.raw.energy keyed by the meter's commune, as partners are asked to."""
    producer = AIOKafkaProducer(**kafka.client_options(), acks="all", linger_ms=5)
    await producer.start()
    try:
        sent = [
            await producer.send(raw_topic("energy"), value, key=meter.commune.encode()) for value in values
        ]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


async def forget_indicator_state(
    kafka: KafkaAccess, settings: Settings, partitions: Iterable[int], family: str = "energy"
) -> None:
    """Checkpoint an empty indicator state at the current end of these partitions of
    zc.valid.<family> (before a worker starts): the worker skips every earlier record, whatever
    its group's committed offset, so only the module's own event times move the watermark."""
    await start_afresh(kafka, family, settings.indicator_grace_seconds, partitions)


K = TypeVar("K")
Series = tuple[tuple[str, str], ...]
"""A series of an indicator: its dimensions as sorted (name, value) pairs."""


def series_of(dimensions: Mapping[str, str]) -> Series:
    return tuple(sorted(dimensions.items()))


async def indicator_offsets(kafka: KafkaAccess, settings: Settings) -> dict[TopicPartition, int]:
    """The current end of zc.indicators, to read only what is published after."""
    consumer = AIOKafkaConsumer(**kafka.client_options())
    await consumer.start()
    try:
        return await consumer.end_offsets(indicator_partitions(settings))
    finally:
        await consumer.stop()


def indicator_partitions(settings: Settings) -> list[TopicPartition]:
    """Every partition of zc.indicators, named explicitly: a subscription's assignment is not
    there yet right after start(), and a reader that missed it would read from the beginning."""
    return [TopicPartition(INDICATOR_TOPIC, p) for p in range(settings.kafka_partitions)]


async def indicator_finals(
    kafka: KafkaAccess,
    settings: Settings,
    indicator: str,
    window: str,
    expected: Mapping[Series, Iterable[int]],
    since: datetime,
    timeout: float,
    offsets: Mapping[TopicPartition, int] | None = None,
) -> dict[Series, dict[int, float]]:
    """The last final value (6 decimals) of each series of ``indicator`` over its expected window
    starts (epoch seconds), published after ``since`` (earlier runs' finals for the same windows
    are ignored), read from ``offsets`` (default: the topic's beginning) until all are there."""
    wanted = {series: set(starts) for series, starts in expected.items()}
    finals: dict[Series, dict[int, float]] = {series: {} for series in wanted}
    window_marker, indicator_marker = f'"window":"{window}"'.encode(), f'"{indicator}"'.encode()
    consumer = AIOKafkaConsumer(**kafka.client_options(), auto_offset_reset="earliest")
    await consumer.start()
    try:
        partitions = indicator_partitions(settings)
        consumer.assign(partitions)
        for tp in partitions:
            if offsets is not None and tp in offsets:
                consumer.seek(tp, offsets[tp])
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline and any(finals[s].keys() != wanted[s] for s in wanted):
            for records in (await consumer.getmany(timeout_ms=500, max_records=50_000)).values():
                for record in records:
                    # Byte tests first: most updates are of other windows and indicators.
                    if window_marker not in (record.value or b"") or indicator_marker not in record.value:
                        continue
                    u = json.loads(record.value)
                    if u["indicator"] != indicator or u["window"] != window or not u["final"]:
                        continue
                    series = series_of(u["dimensions"])
                    start = int(datetime.fromisoformat(u["window_start"]).timestamp())
                    fresh = datetime.fromisoformat(u["updated_at"]) >= since
                    if fresh and start in wanted.get(series, ()):
                        finals[series][start] = round(u["value"], 6)
    finally:
        await consumer.stop()
    return finals


async def hourly_finals(
    kafka: KafkaAccess,
    settings: Settings,
    expected: dict[GoldenMeter, dict[int, float]],
    since: datetime,
    timeout: float,
    offsets: Mapping[TopicPartition, int] | None = None,
    window: str = "1h",
) -> dict[GoldenMeter, dict[int, float]]:
    """The last final hourly (or ``window``) energy of each meter's series over its expected
    window starts, from Kafka, published after ``since`` (earlier runs' finals for the same
    windows are ignored), read from ``offsets`` (take them with ``indicator_offsets`` when the
    test starts: the topic holds millions of records of earlier runs)."""
    finals = await indicator_finals(
        kafka,
        settings,
        "energy_consumed_kwh",
        window,
        {series_of(m.series): starts for m, starts in expected.items()},
        since,
        timeout,
        offsets,
    )
    return {m: finals[series_of(m.series)] for m in expected}


def differences(
    finals: dict[GoldenMeter, dict[int, float]], expected: dict[GoldenMeter, dict[int, float]]
) -> str:
    """What differs, per meter: hours missing, hours wrong (first few of each), for a failure message."""
    return window_differences(finals, expected, lambda meter: meter.meter_id)


def window_differences(
    finals: Mapping[K, dict[int, float]], expected: Mapping[K, dict[int, float]], name: Callable[[K], str]
) -> str:
    """What differs, per series: windows missing, windows wrong (first few of each, as
    (start, got, expected)), for a failure message."""
    lines = []
    for key, hours in expected.items():
        got = finals.get(key, {})
        missing = sorted(set(hours) - set(got))
        wrong = sorted(h for h in hours if h in got and got[h] != hours[h])
        if missing or wrong:
            lines.append(
                f"{name(key)}: {len(missing)}/{len(hours)} hours missing {missing[:5]}, "
                f"{len(wrong)} wrong {[(h, got[h], hours[h]) for h in wrong[:5]]}"
            )
    return "; ".join(lines)
