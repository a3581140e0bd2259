"""The operators' page's pure parts: counters into rates, consumer lag, the figures shaped from
InfluxDB rows, and what a dead letter shows (never its payload)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiokafka import TopicPartition

from operators_view.consumer_lag import lag_per_topic
from operators_view.dead_letter_tail import dead_letter_line
from operators_view.flux_queries import emissions_and_energy as emissions_query
from operators_view.health_sources import sink_state
from operators_view.indicator_reader import Instants
from operators_view.producer_rates import CounterSample, validation_rates
from operators_view.territory_figures import (
    air_quality,
    emissions_and_energy,
    mobility_by_mode,
    producer_freshness,
    trajectory,
)
from schemas.dead_letter import DeadLetter, FieldProblem, Origin
from schemas.local_calendar import ZoneCalendar

DAY = datetime(2026, 3, 10, tzinfo=UTC)


def counters(
    received: int, accepted: dict[str, int], dead: dict[str, int], dup: dict[str, int] | None = None
) -> dict[str, Any]:
    return {
        "received": received,
        "accepted": accepted,
        "duplicates": dup or {},
        "dead_lettered": dead,
        "reasons": {"greater_than_equal": sum(dead.values())},
        "balanced": True,
    }


def test_readings_per_second_per_producer_are_differences_over_the_interval() -> None:
    before = CounterSample(100.0, counters(110, {"enedis": 100, "atmo": 5}, {"enedis": 5}))
    after = CounterSample(102.0, counters(150, {"enedis": 130, "atmo": 9}, {"enedis": 9}, {"atmo": 2}))
    rates = validation_rates(before, after)
    by_producer = {p.producer: p for p in rates.producers}
    assert by_producer["enedis"].readings_per_second == pytest.approx((30 + 4) / 2)
    assert by_producer["enedis"].dead_letters_per_second == pytest.approx(2.0)
    assert by_producer["atmo"].readings_per_second == pytest.approx((4 + 2) / 2)
    assert [p.producer for p in rates.producers] == ["enedis", "atmo"]  # busiest first
    assert rates.received_per_second == pytest.approx(20.0)
    assert rates.dead_letters_per_second == pytest.approx(2.0)
    assert rates.dead_letter_share == pytest.approx(4 / 40)
    assert rates.dead_letter_share_since_start == pytest.approx(9 / 150)
    assert rates.interval_seconds == pytest.approx(2.0)


def test_the_first_sample_has_totals_but_no_rates() -> None:
    rates = validation_rates(None, CounterSample(5.0, counters(10, {"enedis": 9}, {"enedis": 1})))
    assert rates.received_per_second is None and rates.dead_letter_share is None
    assert rates.producers[0].accepted == 9 and rates.producers[0].readings_per_second == 0.0
    assert rates.dead_letter_share_since_start == pytest.approx(0.1)


def test_a_restarted_worker_gives_no_negative_rate() -> None:
    before = CounterSample(1.0, counters(1000, {"enedis": 1000}, {}))
    after = CounterSample(3.0, counters(40, {"enedis": 40}, {}))
    rates = validation_rates(before, after)
    assert rates.received_per_second is None
    assert all(p.readings_per_second == 0.0 for p in rates.producers)


def test_no_traffic_means_no_dead_letter_share_rather_than_a_division_by_zero() -> None:
    same = counters(10, {"enedis": 10}, {})
    rates = validation_rates(CounterSample(1.0, same), CounterSample(2.0, same))
    assert rates.received_per_second == 0.0 and rates.dead_letter_share is None


def test_lag_is_end_minus_committed_summed_per_topic() -> None:
    tp = TopicPartition
    committed = {tp("zc.raw.energy", 0): 90, tp("zc.raw.energy", 1): 50, tp("zc.indicators", 0): 10}
    ends = {tp("zc.raw.energy", 0): 100, tp("zc.raw.energy", 1): 50, tp("zc.indicators", 0): 7}
    lags = lag_per_topic("zerocarbon-worker", committed, ends)
    assert [(lag.topic, lag.lag, lag.partitions) for lag in lags] == [
        ("zc.indicators", 0, 1),  # committed past the end (topic recreated): no negative lag
        ("zc.raw.energy", 10, 2),
    ]


def test_a_partition_without_end_offset_is_left_out() -> None:
    committed = {TopicPartition("gone", 0): 5}
    assert lag_per_topic("g", committed, {}) == []


def hour(n: int) -> datetime:
    return DAY + timedelta(hours=n)


def test_emissions_and_energy_by_commune_and_sector_with_hourly_trend() -> None:
    rows = [
        {"measurement": "emissions_kgco2e", "window": "1h", "commune": "17300", "sector": "residential",
         "time": hour(0), "value": 2.0},
        {"measurement": "emissions_kgco2e", "window": "1h", "commune": "17300", "sector": "residential",
         "time": hour(2), "value": 3.0},
        {"measurement": "emissions_kgco2e", "window": "1d", "commune": "17300", "sector": "residential",
         "time": hour(0), "value": 6.0},  # the day also holds a late reading the hours missed
        {"measurement": "mobility_emissions_kgco2e", "window": "1d", "commune": "17028",
         "time": hour(0), "value": 10.0},
        {"measurement": "mobility_emissions_kgco2e", "window": "1h", "commune": "17028",
         "time": hour(2), "value": 10.0},
        {"measurement": "energy_consumed_kwh", "window": "1h", "commune": "17300", "sector": "residential",
         "time": hour(2), "value": 40.0},
        {"measurement": "energy_consumed_kwh", "window": "1d", "commune": "17300", "sector": "residential",
         "time": hour(0), "value": 100.0},
    ]  # fmt: skip
    figures = emissions_and_energy(rows, DAY, hour(2), {"17300": "La Rochelle", "17028": "Aytré"})
    assert figures.totals.emissions_today_kgco2e == pytest.approx(16.0)
    assert figures.totals.emissions_hour_kgco2e == pytest.approx(13.0)
    assert figures.totals.energy_hour_kwh == pytest.approx(40.0)
    assert figures.totals.emissions_hourly_kgco2e == [2.0, 0.0, 13.0]
    assert [(c.key, c.label) for c in figures.by_commune] == [("17028", "Aytré"), ("17300", "La Rochelle")]
    rochelle = figures.by_commune[1]
    assert (rochelle.emissions_today_kgco2e, rochelle.energy_today_kwh) == (6.0, 100.0)
    assert rochelle.emissions_hourly_kgco2e == [2.0, 0.0, 3.0]
    assert [s.key for s in figures.by_sector] == ["mobility", "residential"]


def test_modal_share_is_each_modes_part_of_todays_passenger_km() -> None:
    rows = [
        {"measurement": "passenger_km", "window": "1d", "mode": "bus", "time": hour(0), "value": 300.0},
        {"measurement": "passenger_km", "window": "1d", "mode": "bike", "time": hour(0), "value": 100.0},
        {"measurement": "passenger_km", "window": "1h", "mode": "bike", "time": hour(1), "value": 60.0},
        {
            "measurement": "mobility_emissions_kgco2e",
            "window": "1d",
            "mode": "bus",
            "time": hour(0),
            "value": 30.0,
        },
    ]
    modes = mobility_by_mode(rows, DAY, hour(1))
    assert [(m.mode, m.modal_share) for m in modes] == [("bus", 0.75), ("bike", 0.25)]
    assert modes[0].emissions_today_kgco2e == 30.0
    assert modes[1].passenger_km_hourly == [0.0, 60.0]


def test_no_passenger_km_means_no_modal_share() -> None:
    rows = [
        {
            "measurement": "mobility_emissions_kgco2e",
            "window": "1d",
            "mode": "bus",
            "time": hour(0),
            "value": 1.0,
        }
    ]
    assert mobility_by_mode(rows, DAY, hour(0))[0].modal_share is None


def test_air_quality_against_the_who_guidelines() -> None:
    rows = [
        {"station": "aq-1", "commune": "17300", "quantity": "no2", "window": "1h", "value": 40.0},
        {"station": "aq-1", "commune": "17300", "quantity": "no2", "window": "1d", "value": 30.0},
        {"station": "aq-2", "commune": "17028", "quantity": "pm25", "window": "1d", "value": 9.0},
        {"station": "aq-2", "commune": "17028", "quantity": "o3", "window": "1d", "value": 80.0},
    ]
    exceedances = [{"station": "aq-1", "quantity": "no2", "value": 3.0}]
    stations = air_quality(
        rows, exceedances, {"no2": 25.0, "pm25": 15.0}, {"no2": "ug/m3"}, {"17300": "La Rochelle"}
    )
    first = stations[0]
    assert (first.station, first.above_guideline, first.exceedance_days, first.commune) == (
        "aq-1", True, 3, "La Rochelle",
    )  # fmt: skip
    by_quantity = {s.quantity: s for s in stations}
    assert by_quantity["pm25"].above_guideline is False and by_quantity["pm25"].hour_mean is None
    assert by_quantity["o3"].who_guideline is None and by_quantity["o3"].above_guideline is None


def test_trajectory_and_producer_freshness() -> None:
    path = trajectory(
        [
            {"measurement": "territory_emissions_kgco2e", "value": 50.0},
            {"measurement": "territory_trajectory_target_kgco2e", "value": 100.0},
            {"measurement": "territory_trajectory_ratio", "value": 0.5},
        ]
    )
    assert (path.emissions_kgco2e, path.target_kgco2e, path.ratio) == (50.0, 100.0, 0.5)
    assert trajectory([]).ratio is None
    now = hour(5)
    fresh = producer_freshness(
        [{"producer": "enedis", "value": now.timestamp() - 42}], [{"producer": "atmo", "value": 0.5}], now
    )
    assert fresh["enedis"].last_event_age_seconds == pytest.approx(42)
    assert fresh["atmo"].last_event_age_seconds is None and fresh["atmo"].completeness == 0.5


def test_instants_are_utc_starts_of_hour_day_and_year() -> None:
    at = Instants.at(datetime(2026, 3, 10, 14, 27, 5, tzinfo=UTC))
    assert (at.hour, at.day, at.year) == (hour(14), DAY, datetime(2026, 1, 1, tzinfo=UTC))
    query = emissions_query("indicators", at.day)
    assert "range(start: 2026-03-10T00:00:00Z)" in query and 'r.window == "1h"' in query


def test_today_and_this_year_begin_at_the_territorys_local_midnight() -> None:
    paris = ZoneCalendar("Europe/Paris")
    at = Instants.at(datetime(2026, 10, 25, 22, 30, tzinfo=UTC), paris)  # 23:30 on the 25-hour day
    assert at.day == datetime(2026, 10, 24, 22, tzinfo=UTC)  # local midnight, summer time
    assert at.year == datetime(2025, 12, 31, 23, tzinfo=UTC)
    assert at.hour == datetime(2026, 10, 25, 22, tzinfo=UTC)
    after_midnight = Instants.at(datetime(2026, 10, 25, 23, 30, tzinfo=UTC), paris)
    assert after_midnight.day == datetime(2026, 10, 25, 23, tzinfo=UTC)  # the next local day


def test_a_dead_letter_shows_its_reason_and_never_its_payload() -> None:
    letter = DeadLetter(
        family="energy",
        stage="validation",
        reason="quantity: Input should be greater than or equal to 0",
        errors=[FieldProblem(path="quantity", type="greater_than_equal", message="...")],
        payload='{"secret-household-meter": "elec-17300-0001", "quantity": -5}',
        payload_encoding="utf-8",
        payload_size=60,
        producer_id="enedis",
        origin=Origin(transport="mqtt", topic="zc/17300/energy/elec-17300-0001"),
        failed_at=datetime(2026, 3, 10, 1, 2, 3, tzinfo=UTC),
    )
    line = dead_letter_line(letter.model_dump_json(by_alias=True).encode(), offset=7)
    assert line.reason.startswith("quantity:") and line.producer == "enedis"
    assert line.error_type == "greater_than_equal" and line.offset == 7
    assert "secret-household-meter" not in repr(line) and "elec-17300-0001" not in repr(line)
    unreadable = dead_letter_line(b"not json", offset=8)
    assert unreadable.error_type == "unreadable" and unreadable.offset == 8


def test_the_sink_write_rate_comes_from_two_status_files_of_the_same_process() -> None:
    previous = {"pid": 1, "points_written": 100, "updated_at": 10.0}
    status = {"pid": 1, "points_written": 400, "updated_at": 12.0, "fresh": True, "memory_limit_bytes": 8}
    assert sink_state(status, previous).points_written_per_second == pytest.approx(150.0)
    assert sink_state(status, {**previous, "pid": 2}).points_written_per_second is None  # restarted
    assert sink_state(status, None).running is True
