"""The soak's live probe (bench/probe_latency.py, bench/live_probe.py): its readings are valid,
late for a partition the simulated territory fills, and move nothing of the simulated
readings' fate; each lands in a window of its own, found by its update's key and value; the
delays are split by the phases of the soak."""

from __future__ import annotations

import json
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

from aiokafka.partitioner import DefaultPartitioner
from pydantic_core import to_json

from config.settings import Settings
from schemas.catalogue import valid_topic
from schemas.dead_letter import Origin
from schemas.environment import EnvironmentReading, EnvQuantity
from schemas.families import FAMILIES
from sensors.fleet import build_fleet
from sensors.fleet_registry import with_fleet
from streams.indicators.catalogue import indicator_record
from streams.indicators.engine import IndicatorPartition, ValidRecord
from streams.indicators.window_state import WindowUpdate
from streams.validation.engine import VALID_ARRAY
from streams.validation.stage import Accepted, validate_payload
from tests.contract.samples import REFERENCE

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))  # bench's scripts import each other
from live_probe import PROBE_STATION, LiveProbe, probe_device, seen_update
from probe_latency import (
    SLOT_SECONDS,
    ProbeMatcher,
    ProbeReading,
    SeenUpdate,
    event,
    key_partition,
    live_phase,
    payload,
    per_phase,
    percentile,
    phase_at,
    probe_slots,
    series_dimensions,
    summary,
    update_key,
)

DEVICE = probe_device(REFERENCE)
WALL = datetime(2026, 12, 6, 12, tzinfo=UTC)
LIVE = datetime(2026, 12, 2, 8, tzinfo=UTC)  # the simulated territory's device time, days behind
PROBE_SLOT = int((LIVE - timedelta(days=3)).timestamp()) // SLOT_SECONDS * SLOT_SECONDS
FLEET = build_fleet(1000, list(REFERENCE.communes.values()))
SIMULATED = with_fleet(REFERENCE, FLEET)
STATION = next(s for s in FLEET if s.commune == "17300" and s.kind.device_type == "air_quality_station")


def _update(slot: int, value: float, at: float = 100.0) -> SeenUpdate:
    return SeenUpdate(slot, value, False, 0, at, at + 0.1, at - 0.2)


def _reading(k: int, slot: int, published_at: float = 0.0) -> ProbeReading:
    return ProbeReading(k, slot + 420, float(k + 1), published_at)


# -- what the probe publishes ------------------------------------------------------------------


def test_the_probe_is_a_registered_station_no_simulated_device_is_and_its_station_is_its_series() -> None:
    assert DEVICE.device_id == PROBE_STATION and DEVICE.topic == f"zc/17300/environment/{PROBE_STATION}"
    assert DEVICE.device_id not in {spec.device_id for spec in FLEET}
    assert DEVICE.producer_id == STATION.kind.producer_id == "atmo-na"  # the simulated stations' producer
    assert dict(series_dimensions(DEVICE))["station"] == PROBE_STATION


def test_a_probe_reading_is_accepted_by_validation_on_its_own_topic() -> None:
    raw = payload(DEVICE, 7, PROBE_SLOT + 420, 8.0, "run1")
    origin = Origin(transport="mqtt", topic=DEVICE.topic)
    outcome = validate_payload(FAMILIES["environment"], raw, origin, REFERENCE, WALL)
    assert isinstance(outcome, Accepted) and outcome.producer == "atmo-na"


def test_slots_go_back_from_before_the_anchor_one_window_each_down_to_the_oldest() -> None:
    anchor = PROBE_SLOT + 1000
    every = list(probe_slots(anchor, PROBE_SLOT - 10 * SLOT_SECONDS, lambda slot: True))
    assert every[0] == PROBE_SLOT and every[-1] == PROBE_SLOT - 10 * SLOT_SECONDS and len(every) == 11
    assert all(b == a - SLOT_SECONDS for a, b in pairwise(every))
    taken = list(probe_slots(anchor, PROBE_SLOT - 10 * SLOT_SECONDS, lambda slot: slot % 1800 == 0))
    assert taken == [s for s in every if s % 1800 == 0]


def test_the_update_key_and_its_partition_are_the_workers() -> None:
    dims = series_dimensions(DEVICE)
    update = WindowUpdate("environment_value", dims, SLOT_SECONDS, PROBE_SLOT, 5.0, 1, True, 2)
    key, _ = indicator_record(update, WALL, to_json(WALL))
    assert update_key(dims, PROBE_SLOT) == key
    for n in (1, 4, 7):
        assert key_partition(key, n) == DefaultPartitioner()(key, list(range(n)), list(range(n)))


def test_a_record_of_zc_indicators_is_the_probes_update_only_for_its_15_minute_window() -> None:
    dims = series_dimensions(DEVICE)
    marker = f'"station":"{PROBE_STATION}"'.encode()

    def record(size: int, value: float = 12.0) -> Any:
        update = WindowUpdate("environment_value", dims, size, PROBE_SLOT, value, 1, False, 0)
        _, body = indicator_record(update, WALL, to_json(WALL))
        return SimpleNamespace(value=body, timestamp=int(WALL.timestamp() * 1000) + 250)

    seen = seen_update(record(SLOT_SECONDS), marker, 123.0)
    assert seen == SeenUpdate(PROBE_SLOT, 12.0, False, 0, WALL.timestamp() + 0.25, 123.0, WALL.timestamp())
    assert seen_update(record(3600), marker, 123.0) is None
    assert seen_update(record(SLOT_SECONDS), b'"station":"aq-17300-0101"', 123.0) is None


# -- the probe's readings in a partition the simulated territory fills --------------------------


def _record(offset: int, *events: EnvironmentReading) -> ValidRecord:
    value = VALID_ARRAY["environment"].dump_json(list(events), by_alias=True)
    return ValidRecord(valid_topic("environment"), 1, offset, b"17300", value)


def _simulated(n: int, at: datetime) -> EnvironmentReading:
    return EnvironmentReading(
        event_id=f"{STATION.device_id}-{n}", producer_id="atmo-na", event_time=at,
        sensor_id=STATION.device_id, commune=STATION.commune, quantity=EnvQuantity.NO2, value=20.0,
        unit="ug/m3",
    )  # fmt: skip


def _progress(engine: IndicatorPartition[int]) -> dict[str, Any]:
    """What decides whether a reading is late and when a window closes."""
    windows, activity = engine.state.windows, engine.activity
    return {
        "watermark": windows.watermark,
        "frontier": windows.frontier,
        "producers": dict(windows.producers),
        "open": set(windows.open),
        "activity_watermark": activity.watermark,
        "last_event": dict(activity.last_event),
        "hours": {k: set(v) for k, v in activity.hours.items()},
    }


def _live_engine() -> IndicatorPartition[int]:
    engine: IndicatorPartition[int] = IndicatorPartition(
        valid_topic("environment"), 1, grace_seconds=300, checkpoint_seconds=5.0, idle_close_seconds=60
    )
    for n in range(20):  # a reading every 5 minutes of the simulated station
        engine.apply(_record(n, _simulated(n, LIVE + timedelta(minutes=5 * n))), SIMULATED, WALL, n)
    engine.flush(WALL, 1.0, SIMULATED)
    return engine


def _values(updates: list[tuple[bytes, bytes]], window: str) -> dict[str, float]:
    found = [json.loads(value) for _, value in updates]
    return {
        u["window_start"]: u["value"]
        for u in found
        if u["dimensions"].get("station") == PROBE_STATION and u["window"] == window
    }


def test_a_probe_reading_is_late_moves_nothing_and_its_15_minute_window_shows_it_alone() -> None:
    engine = _live_engine()
    before = _progress(engine)
    probe = event(DEVICE, 0, PROBE_SLOT + 420, 17.0, "run1")
    applied = engine.apply(_record(100, probe), SIMULATED, WALL, 100)
    assert applied.counters == Counter(late=1)
    published = engine.flush(WALL, 2.0, SIMULATED)
    assert _progress(engine) == before
    start = datetime.fromtimestamp(PROBE_SLOT, UTC).isoformat().replace("+00:00", "Z")
    assert _values(published.updates, "15m") == {start: 17.0}
    assert _values(published.updates, "1m") == {}  # past the minutes' 48-hour horizon
    # The territory goes on as before: its next reading is on time.
    later = engine.apply(_record(101, _simulated(99, LIVE + timedelta(minutes=100))), SIMULATED, WALL, 101)
    assert later.counters == Counter(counted=1)


def test_a_reading_stamped_at_the_wall_clock_would_move_the_partition_ahead_of_the_territory() -> None:
    """Why the probe's readings are not stamped now: the simulated readings after it would be
    judged against a watermark days ahead of their device time."""
    engine = _live_engine()
    before = _progress(engine)
    now = event(DEVICE, 0, int(WALL.timestamp()), 17.0, "run1")
    engine.apply(_record(100, now), SIMULATED, WALL, 100)
    engine.flush(WALL, 2.0, SIMULATED)
    after = _progress(engine)
    assert after["watermark"] == after["activity_watermark"] == int(WALL.timestamp()) > before["watermark"]
    assert after["frontier"] > before["frontier"]  # no producer may hold it more than a day behind


# -- matching and delays -------------------------------------------------------------------------


def test_each_reading_is_matched_to_the_first_update_of_its_window_that_includes_it() -> None:
    matcher = ProbeMatcher()
    first, second = _reading(0, PROBE_SLOT), _reading(1, PROBE_SLOT - SLOT_SECONDS)
    matcher.published(first)
    matcher.published(second)
    assert matcher.seen(_update(PROBE_SLOT - 2 * SLOT_SECONDS, 2.0)) is None  # not one of its windows
    assert matcher.seen(_update(PROBE_SLOT, 1.5)) is None  # its window, a value without it
    assert matcher.seen(_update(PROBE_SLOT, 1.0, at=10.0)) == first
    assert matcher.seen(_update(PROBE_SLOT, 1.0, at=11.0)) is None  # already matched: the first stays
    assert not matcher.all_matched()
    assert matcher.seen(_update(PROBE_SLOT - SLOT_SECONDS, 2.0, at=12.0)) == second
    assert matcher.all_matched() and matcher.matched[0].kafka_at == 10.0


def test_percentiles_are_nearest_rank_and_a_summary_has_none_without_values() -> None:
    values = [float(v) for v in range(1, 101)]
    assert [percentile(values, q) for q in (50, 95, 99, 100)] == [50.0, 95.0, 99.0, 100.0]
    assert summary([]) == {"count": 0, "p50": None, "p95": None, "p99": None, "max": None}
    assert summary([3.0, 1.0, 2.0]) == {"count": 3, "p50": 2.0, "p95": 3.0, "p99": 3.0, "max": 3.0}


def test_the_soaks_phases_as_the_probe_splits_them() -> None:
    assert live_phase(10, 60, True, False, False) == "warm-up"
    assert live_phase(70, 60, True, False, False) == "load"
    assert live_phase(130, 60, True, True, True) == "backfill"
    assert live_phase(400, 60, False, True, True) == "backfill, live load over"
    assert live_phase(500, 60, True, True, False) == "after backfill"
    marks = [(100.0, "warm-up"), (160.0, "load"), (220.0, "backfill")]
    phases = [phase_at(t, marks) for t in (99.0, 100.0, 159.9, 160.0, 1e9)]
    assert phases == [None, "warm-up", "warm-up", "load", "backfill"]


def test_delays_per_phase_count_the_readings_published_in_it_and_those_found() -> None:
    marks = [(0.0, "warm-up"), (10.0, "load"), (20.0, "backfill")]
    readings = [_reading(k, PROBE_SLOT - k * SLOT_SECONDS, published_at=5.0 * k + 1) for k in range(5)]
    matched = {r.k: _update(r.slot, r.value, at=r.published_at + 0.5 + r.k) for r in readings if r.k != 3}
    phases = per_phase(readings, matched, marks)
    assert list(phases) == ["warm-up", "load", "backfill"]
    assert phases["warm-up"]["published"] == 2 and phases["warm-up"]["indicators"]["max"] == 1.5
    assert phases["load"]["published"] == 2 and phases["load"]["matched"] == 1  # reading 3 never found
    assert phases["backfill"]["indicators"] == {"count": 1, "p50": 4.5, "p95": 4.5, "p99": 4.5, "max": 4.5}
    assert phases["backfill"]["received"]["max"] == 4.6 and phases["backfill"]["flush"]["max"] == 4.3


def test_the_probes_results_hold_each_reading_on_one_line_and_the_delays_per_phase() -> None:
    probe = LiveProbe(cast(Settings, None), DEVICE, PROBE_SLOT, "run1")  # nothing started: no I/O
    found, lost = _reading(0, PROBE_SLOT, published_at=10.0), _reading(1, PROBE_SLOT - SLOT_SECONDS, 11.0)
    probe.matcher.published(found)
    probe.matcher.published(lost)
    probe.matcher.seen(_update(PROBE_SLOT, 1.0, at=12.5))
    results = probe.results([(0.0, "load")])
    assert results["readings"] == [
        f"0,{PROBE_SLOT + 420},1,10.000,2.3,2.5,2.6",
        f"1,{PROBE_SLOT - 480},2,11.000,,,",
    ]
    assert results["published"] == 2 and results["matched"] == 1
    assert results["per_phase"]["load"]["indicators"]["max"] == 2.5
    assert results["series"]["dimensions"]["station"] == PROBE_STATION
