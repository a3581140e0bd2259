"""The simulated territory: placement by population, deterministic streams, valid payloads,
load shapes that behave like a territory, and fault tallies that match what was sent."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reference.loader import load_reference
from schemas.dead_letter import DeadLetter
from schemas.families import FAMILIES
from sensors import faults
from sensors.fleet import DEFAULT_MIX, KINDS, apportion, build_fleet, kind_counts, parse_mix
from sensors.fleet_registry import with_fleet, write_reference_dir
from sensors.load_shapes import heating_need, local_clock, outdoor_temperature, sun_height, traffic
from sensors.send_tally import SendTally
from sensors.territory_stream import Emission, TerritoryStream
from streams.validation.deduplication import RecentEventIds
from streams.validation.stage import Accepted, Duplicate, validate_payload
from tests.unit.simulated_territory_samples import COMMUNES, NOW, ORIGIN, REFERENCE, START, every_fault, take

FAULTY = every_fault(index_reset=0.02)


@given(st.integers(0, 5000), st.lists(st.floats(0.01, 1000), min_size=1, max_size=30))
def test_apportion_sums_to_the_total_and_stays_within_one_of_each_quota(
    total: int, weights: list[float]
) -> None:
    parts = apportion(total, weights)
    assert sum(parts) == total
    for part, weight in zip(parts, weights, strict=True):
        assert abs(part - total * weight / sum(weights)) < 1


def test_devices_are_placed_in_proportion_to_population() -> None:
    fleet = build_fleet(5000, COMMUNES)
    population = sum(c.population for c in COMMUNES)
    per_commune = Counter(spec.commune for spec in fleet)
    assert set(per_commune) == {c.insee for c in COMMUNES}
    for commune in COMMUNES:
        assert abs(per_commune[commune.insee] - 5000 * commune.population / population) < 1
    # each commune gets the territory's mix of kinds, not all meters in one and all bikes in another
    la_rochelle = Counter(spec.kind for spec in fleet if spec.commune == "17300")
    for kind, count in kind_counts(5000, DEFAULT_MIX).items():
        assert abs(la_rochelle[kind] - count * per_commune["17300"] / 5000) < 2


def test_the_fleet_follows_the_mix_and_has_unique_ids() -> None:
    fleet = build_fleet(1000, COMMUNES, parse_mix("energy=2,mobility=2"))
    families = Counter(spec.family for spec in fleet)
    assert families == {"energy": 500, "mobility": 500}
    assert len({spec.device_id for spec in fleet}) == 1000
    assert {spec.kind for spec in fleet} == {k for k in KINDS if k.family != "environment"}


def test_a_bad_mix_is_refused_with_the_entry_at_fault() -> None:
    with pytest.raises(ValueError, match="water=1"):
        parse_mix("energy=1,water=1")


def test_the_same_seed_gives_the_same_messages_and_another_seed_others() -> None:
    fleet = build_fleet(300, COMMUNES)
    first = take(TerritoryStream(fleet, START, 42, FAULTY), 3000)
    again = take(TerritoryStream(fleet, START, 42, FAULTY), 3000)
    other = take(TerritoryStream(fleet, START, 43, FAULTY), 3000)
    assert first == again
    assert [e.payload for e in first] != [e.payload for e in other]


def _event_ids(emissions: list[Emission]) -> set[str]:
    ids = set()
    for emission in emissions:
        try:
            ids.add(json.loads(emission.payload)["event_id"])
        except (ValueError, KeyError, TypeError):
            continue  # a malformed message: maybe no JSON, maybe no id
    return ids


def test_runs_of_the_same_fleet_share_no_event_id_unless_they_are_the_same_run() -> None:
    """Validation remembers event ids for an hour, across its restarts: another run of the same
    fleet (another seed, or the same seed from another start, its phases the same) must not
    look like this one's resends, while the same run published again does."""
    fleet = build_fleet(300, COMMUNES)
    first = _event_ids(take(TerritoryStream(fleet, START, 42), 3000))
    assert _event_ids(take(TerritoryStream(fleet, START, 42), 3000)) == first
    assert not first & _event_ids(take(TerritoryStream(fleet, START, 43), 3000))
    assert not first & _event_ids(take(TerritoryStream(fleet, START + 600, 42), 3000))
    for event_id in first:  # the device's clock comes last (tests/e2e/fault_expectations.py)
        assert START <= int(event_id.rsplit("-", 1)[1]) <= START + 86400


def test_messages_come_in_simulated_time_order_on_the_topic_tree() -> None:
    fleet = build_fleet(200, COMMUNES)
    emissions = take(TerritoryStream(fleet, START, 1, topic_root="zc-x"), 2000)
    clocks = [e.clock for e in emissions]
    assert clocks == sorted(clocks)
    for e in emissions[:200]:
        root, commune, family, device = e.topic.split("/")
        payload = json.loads(e.payload)
        assert (root, family) == ("zc-x", e.family)
        assert payload["commune"] == commune and device in payload.values()


def test_every_clean_payload_is_accepted_by_validation_and_every_malformed_one_refused() -> None:
    fleet = build_fleet(600, COMMUNES)
    reference = with_fleet(REFERENCE, fleet)
    recent = RecentEventIds(horizon=3600)
    emissions = take(TerritoryStream(fleet, START, 7, FAULTY), 12_000)
    outcomes: Counter[str] = Counter()
    kinds_seen: set[str] = set()
    for e in emissions:
        outcome = validate_payload(FAMILIES[e.family], e.payload, ORIGIN, reference, NOW, recent)
        if faults.MALFORMED in e.faults:
            assert isinstance(outcome, DeadLetter), e.payload
            outcomes["dead_lettered"] += 1
        elif faults.DUPLICATE in e.faults:
            assert isinstance(outcome, Duplicate), e.payload
            outcomes["duplicates"] += 1
        else:
            assert isinstance(outcome, Accepted), (e.payload, getattr(outcome, "errors", None))
            outcomes["accepted"] += 1
            kinds_seen.add(json.loads(e.payload).get("kind") or json.loads(e.payload)["quantity"])
    tally = SendTally()
    for e in emissions:
        tally.count(e.family, e.faults)
    assert tally.expected_at_validation() == dict(outcomes)
    assert {"bike_trip", "transit_trip", "ev_charging_session", "no2", "co2_indoor", "index"} <= kinds_seen


def test_unregistered_simulated_devices_are_dead_lettered_as_unknown() -> None:
    fleet = build_fleet(50, COMMUNES)
    e = next(TerritoryStream(fleet, START, 1))
    outcome = validate_payload(FAMILIES[e.family], e.payload, ORIGIN, REFERENCE, NOW)
    assert isinstance(outcome, DeadLetter)
    assert "unknown_device" in outcome.errors[0].type


def test_the_written_registry_lets_the_fleet_in(tmp_path) -> None:  # type: ignore[no-untyped-def]
    fleet = build_fleet(100, COMMUNES)
    folder = write_reference_dir(fleet, REFERENCE.loaded_from, tmp_path / "ref")
    devices = load_reference(folder).devices
    assert all(spec.device_id in devices for spec in fleet)
    assert set(REFERENCE.devices) <= set(devices)


def test_fault_tallies_match_the_messages_that_carry_them() -> None:
    fleet = build_fleet(400, COMMUNES)
    emissions = take(TerritoryStream(fleet, START, 3, FAULTY), 20_000)
    tally = SendTally()
    for e in emissions:
        tally.count(e.family, e.faults)
    report = tally.report()
    assert report["messages"] == len(emissions)
    assert sum(f["messages"] for f in report["per_family"].values()) == len(emissions)
    for fault in faults.FAULTS:
        assert report["per_fault"][fault] == sum(fault in e.faults for e in emissions)
        assert report["per_fault"][fault] > 0, fault
    clean = [e for e in emissions if faults.MALFORMED not in e.faults]
    event_ids = Counter(json.loads(e.payload)["event_id"] for e in clean)
    assert sum(n - 1 for n in event_ids.values()) == report["per_fault"][faults.DUPLICATE]
    # late readings really are late: their event time is well before the time they are sent
    for e in emissions:
        if faults.LATE in e.faults and faults.CLOCK_SKEW not in e.faults:
            sent_late = e.clock - datetime.fromisoformat(json.loads(e.payload)["event_time"]).timestamp()
            assert sent_late >= 600


def test_without_faults_nothing_is_tagged_and_nothing_is_held_back() -> None:
    stream = TerritoryStream(build_fleet(100, COMMUNES), START, 5)
    emissions = [next(stream) for _ in range(1000)]
    assert all(not e.faults for e in emissions)
    assert stream.drain() == []


def _clock(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def test_heating_follows_the_cold_and_the_sun_sets() -> None:
    january_night = local_clock(_clock("2026-01-15T04:00:00+01:00"))
    july_afternoon = local_clock(_clock("2026-07-15T15:00:00+02:00"))
    assert outdoor_temperature(january_night) < 5 < 20 < outdoor_temperature(july_afternoon)
    assert heating_need(outdoor_temperature(january_night)) > 0.5
    assert heating_need(outdoor_temperature(july_afternoon)) == 0
    assert sun_height(_clock("2026-06-21T14:00:00+02:00")) > 0.9
    assert sun_height(_clock("2026-06-21T01:00:00+02:00")) < 0


def test_traffic_peaks_at_rush_hour_and_is_quieter_on_sundays() -> None:
    rush = traffic(local_clock(_clock("2026-03-10T17:45:00+01:00")))  # a Tuesday
    night = traffic(local_clock(_clock("2026-03-10T03:00:00+01:00")))
    sunday = traffic(local_clock(_clock("2026-03-15T17:45:00+01:00")))
    assert rush > 0.9 and night < 0.1 and sunday < rush / 2


def _mean(stream: TerritoryStream, n: int, pick: str, value: str) -> dict[int, float]:
    """Mean ``value`` field per UTC hour of day over readings whose kind or quantity is ``pick``."""
    sums: dict[int, list[float]] = {}
    for _ in range(n):
        payload = json.loads(next(stream).payload)
        if pick in (payload.get("kind"), payload.get("quantity"), payload.get("carrier")):
            hour = datetime.fromisoformat(payload["event_time"]).hour
            sums.setdefault(hour, []).append(payload[value])
    return {h: sum(v) / len(v) for h, v in sums.items()}


def test_simulated_no2_follows_traffic_and_pv_follows_the_sun() -> None:
    fleet = build_fleet(400, COMMUNES, {"environment": 1.0})
    no2 = _mean(TerritoryStream(fleet, START, 2), 40_000, "no2", "value")
    assert no2[16] > 1.5 * no2[2]  # 17:00 local (UTC+1) against 03:00
    pv_fleet = build_fleet(300, COMMUNES, {"energy": 1.0})
    pv = _mean(TerritoryStream(pv_fleet, _clock("2026-06-01T00:00:00Z"), 2), 30_000, "solar_pv", "quantity")
    assert pv.get(1, 0.0) == 0.0 and pv[12] > 100  # Wh per quarter hour at noon
