"""What the indicator stage must make of the typed events a fault run produced, by the rules of
docs/indicators.md, computed from the events themselves (tests/e2e/test_fault_reconciliation.py)."""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

from reference.loader import load_reference
from schemas.catalogue import valid_topic
from schemas.energy import EnergyReading
from schemas.families import FAMILIES
from schemas.local_calendar import Calendar
from schemas.partition_key import commune_partition
from streams.indicators.index_deltas import ROLLOVER_MARGIN, counter_capacity
from streams.validation.engine import VALID_ARRAY

SMALLEST_WINDOW_S = 60


@dataclass(frozen=True)
class Typed:
    """An event as it reached its typed topic; a list of them keeps each partition's order."""

    family: str
    partition: int
    event: Any  # the family's pydantic model, as the indicator stage reads it

    @property
    def event_id(self) -> str:
        return str(self.event.event_id)

    @property
    def device_id(self) -> str:
        return str(getattr(self.event, FAMILIES[self.family].device_field))


def typed_events(written: list[tuple[str, bytes]], partitions: int) -> list[Typed]:
    """The events of the typed topics, in the order of each partition (the partition is the
    commune's: validation routes every event there)."""
    family_of = {valid_topic(name): name for name in FAMILIES}
    out = []
    for topic, value in written:
        family = family_of.get(topic)
        if family is not None:
            for event in VALID_ARRAY[family].validate_json(value):
                out.append(Typed(family, commune_partition(event.commune, partitions), event))
    return out


def instance_time(record: dict[str, Any]) -> datetime:
    """The event time the device stamped; for a malformed payload without one, its event id's."""
    if record["event_time"] is not None:
        return datetime.fromisoformat(record["event_time"])
    if record["event_id"] is not None:
        return datetime.fromtimestamp(int(record["event_id"].rsplit("-", 1)[1]), UTC)
    # Cut before its event id: a malformed message is never held back, so it was stamped when
    # sent, by the device's clock.
    sent = datetime.fromisoformat(record["sent_at"]).timestamp()
    return datetime.fromtimestamp(sent + (record.get("clock_skew_s") or 0), UTC)


@dataclass
class IndicatorStage:
    """What the indicator stage must make of the typed events it reads, by the rules of
    docs/indicators.md applied to the order they arrived in, from an empty state:

    - a meter's index is placed among its others in event time (the run is within the
      indexes kept, streams/indicators/meter_indexes.py): one older than all is a baseline,
      one at the time of another is out of order; judged against the index before it in
      time, one below it is a reset (the simulated counters are far from wrapping), except a
      wrap: the one before in the top tenth of its register (``counter_capacity``) and the
      wrap within the meter's power (``rollovers``: counted); anything else contributes, an
      interval reading where its interval starts;
    - the consumption of indexes is that of the meters' indexes in event-time order, each
      delta at the later index's time, whatever order they arrived in;
    - a contribution is late for the watermark when its partition's watermark (the highest
      contribution time before it) is at or past its 1-minute window's end plus the grace;
      exactly at it is counted as either (``late_max``), in case the boundary were taken the
      other way. The engine closes windows on the producers' progress, which is never ahead
      of the watermark: it counts at most ``late_max`` late.
    """

    late_min: int = 0
    late_max: int = 0
    contributions: int = 0
    baselines: int = 0
    falls: list[tuple[Typed, Typed]] = field(default_factory=list)  # (last index, the lower one)
    rollovers: list[tuple[Typed, Typed]] = field(default_factory=list)  # falls counted as a wrap
    out_of_order: list[str] = field(default_factory=list)  # event ids of index readings
    verdicts: dict[str, str] = field(default_factory=dict)  # event id -> what happened to it
    # (commune, sector, carrier, year) -> kWh
    consumed_kwh: defaultdict[tuple[str, str, str, int], float] = field(
        default_factory=lambda: defaultdict(float)
    )
    # (commune, sector, carrier, start of its local day) -> kWh
    consumed_kwh_by_day: defaultdict[tuple[str, str, str, int], float] = field(
        default_factory=lambda: defaultdict(float)
    )

    def consume(self, e: EnergyReading, at: datetime, kwh: float, calendar: Calendar) -> None:
        """``kwh`` of ``e``'s series counted at ``at``: in its local year and its local day."""
        ts = int(at.timestamp())
        series = (e.commune, str(e.sector), str(e.carrier))
        self.consumed_kwh[(*series, calendar.year_of(ts))] += kwh
        self.consumed_kwh_by_day[(*series, calendar.day(ts)[0])] += kwh


def wrapped_kwh(previous: EnergyReading, lower: EnergyReading, max_power_kw: float) -> float | None:
    """The consumption the engine derives from a fall it takes for a wrapped counter
    (streams/indicators/index_deltas.py: capacity guessed from the last index), else None."""
    capacity = counter_capacity(previous.quantity_kwh)
    wrapped = capacity - previous.quantity_kwh + lower.quantity_kwh
    hours = (lower.event_time - previous.event_time).total_seconds() / 3600
    if previous.quantity_kwh >= ROLLOVER_MARGIN * capacity and wrapped <= max_power_kw * hours:
        return wrapped
    return None


def expected_indicator_stage(
    typed: list[Typed], no_factor: set[str], grace: int, registry: Path, calendar: Calendar
) -> IndicatorStage:
    """What the indicator stage must do with ``typed``; ``calendar`` (the worker's) says which
    year each reading's consumption counts in."""
    bounds = load_reference(registry).bounds.energy
    stage = IndicatorStage()
    watermarks: dict[tuple[str, int], int] = {}
    kept: dict[str, list[Typed]] = {}  # each meter's indexes, in event time
    for t in typed:
        e = t.event
        at: datetime = e.event_time
        kwh: float = 0.0
        if isinstance(e, EnergyReading) and e.kind == "index":
            indexes = kept.setdefault(e.meter_id, [])
            k = bisect_left([i.event.event_time for i in indexes], e.event_time)
            if k < len(indexes) and indexes[k].event.event_time == e.event_time:
                stage.out_of_order.append(t.event_id)
                stage.verdicts[t.event_id] = "index out of order"
                continue
            indexes.insert(k, t)
            if k == 0:
                stage.baselines += 1
                stage.verdicts[t.event_id] = "index baseline"
                continue
            previous = indexes[k - 1]
            if e.quantity_kwh < previous.event.quantity_kwh:
                wrapped = wrapped_kwh(previous.event, e, bounds.power_limit_kw(str(e.carrier), str(e.sector)))
                if wrapped is None:
                    stage.falls.append((previous, t))
                    stage.verdicts[t.event_id] = "index reset"
                    continue
                stage.rollovers.append((previous, t))
        elif isinstance(e, EnergyReading):
            kwh = e.quantity_kwh
            at = e.interval_start or at
        if t.event_id in no_factor:
            stage.verdicts[t.event_id] = "no emission factor"
            continue
        ts = int(at.timestamp())
        closes = ts - ts % SMALLEST_WINDOW_S + SMALLEST_WINDOW_S + grace
        watermark = watermarks.get((t.family, t.partition), 0)
        if watermark > closes:
            stage.late_min += 1
            stage.late_max += 1
            stage.verdicts[t.event_id] = "late"
        elif watermark == closes:
            stage.late_max += 1
            stage.verdicts[t.event_id] = "late or on time (at the boundary)"
        else:
            stage.verdicts[t.event_id] = "on time"
        watermarks[(t.family, t.partition)] = max(watermark, ts)
        stage.contributions += 1
        if isinstance(e, EnergyReading) and e.kind != "index" and e.carrier != "solar_pv":
            stage.consume(e, at, kwh, calendar)
    for indexes in kept.values():
        for previous, t in pairwise(indexes):
            e = t.event
            kwh = index_kwh(previous.event, e, bounds.power_limit_kw(str(e.carrier), str(e.sector)))
            if kwh is not None and t.event_id not in no_factor and e.carrier != "solar_pv":
                stage.consume(e, e.event_time, kwh, calendar)
    return stage


def index_kwh(previous: EnergyReading, later: EnergyReading, max_power_kw: float) -> float | None:
    """The consumption between two successive indexes in event time (None: a reset)."""
    if later.quantity_kwh >= previous.quantity_kwh:
        return later.quantity_kwh - previous.quantity_kwh
    return wrapped_kwh(previous, later, max_power_kw)
