"""Examples a reader can check by hand: what each party receives under the four shipped agreements and
variants of them, and a defect once found, kept fixed."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from sharing.agreement_terms import Detail, Purpose
from sharing.agreements import Agreement, load_agreement_file, parse_agreement
from sharing.pseudonyms import Pseudonymiser
from sharing.sharing_engine import AGREEMENT_HEADER, VERSION_HEADER, SharingEngine
from tests.agreement_documents import agreement_document
from tests.unit.sharing_engine_fixtures import (
    FAMILIES,
    INDICATOR_NAMES,
    KEYS,
    PSEUDONYM,
    SAMPLES_DIR,
    T0,
    Event,
    Update,
    _engine,
)


def _sample(stem: str) -> Agreement:
    return load_agreement_file(SAMPLES_DIR / f"{stem}.jsonld", INDICATOR_NAMES)


SAMPLE_STEMS = (
    "lru-energy-research",
    "public-open-indicators",
    "region-territory-steering",
    "yelo-mobility-planning",
)
JUNE = datetime(2026, 9, 15, 8, tzinfo=UTC)  # every sample is in force
EIGHT = datetime(2026, 9, 15, 8, tzinfo=UTC)


def _samples() -> SharingEngine:
    return _engine(_sample(stem) for stem in SAMPLE_STEMS)


def _reading(sector: str, producer: str = "enedis") -> Event:
    meter = "09876543210123" if sector == "residential" else "55500011122233"
    return {
        "schema": "energy.reading",
        "schema_version": 1,
        "event_id": f"{meter}-20260915T0800",
        "producer_id": producer,
        "event_time": "2026-09-15T08:00:00Z",
        "ingestion_time": "2026-09-15T08:00:04Z",
        "meter_id": meter,
        "commune": "17300",
        "sector": sector,
        "carrier": "electricity",
        "quantity": 1.25,
        "unit": "kWh",
        "kind": "interval",
        "interval_start": "2026-09-15T07:30:00Z",
    }


def _trip(device: str = "bike-0042", **changes: Any) -> Event:
    return {
        "schema": "mobility.event",
        "schema_version": 1,
        "event_id": f"{device}-20260915T0800",
        "producer_id": "yelo",
        "event_time": "2026-09-15T08:00:00Z",
        "ingestion_time": "2026-09-15T08:00:02Z",
        "device_id": device,
        "commune": "17300",
        "kind": "bike_trip",
        "started_at": "2026-09-15T07:41:00Z",
        "distance_km": 3.2,
        "electric": True,
    } | changes


def _cell(indicator: str, window: str, dimensions: dict[str, str], value: float = 12.5) -> Update:
    return {
        "schema": "indicator.update",
        "schema_version": 1,
        "indicator": indicator,
        "unit": "kgCO2e",
        "window": window,
        "window_start": "2026-09-14T00:00:00Z",
        "window_end": "2026-09-15T00:00:00Z",
        "dimensions": dimensions,
        "value": value,
        "final": True,
        "revision": 2,
        "updated_at": "2026-09-15T00:05:00Z",
    }


def test_every_sample_is_in_force_on_the_examples_day() -> None:
    assert all(_sample(stem).active(JUNE) for stem in SAMPLE_STEMS)


def test_the_research_lab_receives_a_households_readings_pseudonymised_and_without_ingestion_time() -> None:
    pseudonymise = Pseudonymiser(KEYS)
    households, offices = _reading("residential"), _reading("tertiary", "grdf")
    [release] = _samples().events("energy", [households, offices], JUNE)
    assert release.agreement.uid == "urn:zerocarbon:agreement:lru-energy-research"
    assert release.topic == "zc.share.lru-lab"
    assert dict(release.headers)[AGREEMENT_HEADER] == b"urn:zerocarbon:agreement:lru-energy-research"
    assert dict(release.headers)[VERSION_HEADER] == release.agreement.version.encode()
    assert b"09876543210123" not in release.value
    home, office = json.loads(release.value)
    assert home["meter_id"] == pseudonymise("09876543210123")
    assert home["event_id"] == pseudonymise("09876543210123-20260915T0800")
    assert home["producer_id"] == pseudonymise("enedis")
    assert "ingestion_time" not in home
    assert home["quantity"] == 1.25 and home["interval_start"] == "2026-09-15T07:30:00Z"
    # A business's meter is no household: only what the agreement says is pseudonymised.
    assert office["meter_id"] == "55500011122233" and office["event_id"] == "55500011122233-20260915T0800"
    assert office["producer_id"] == pseudonymise("grdf")
    assert (release.items, release.secret, release.first_time, release.last_time) == (2, 0, EIGHT, EIGHT)


def test_a_reading_of_a_producer_outside_the_agreement_goes_nowhere() -> None:
    assert _samples().events("energy", [_reading("residential", "sunpower-coop")], JUNE) == []


def test_bike_trips_go_to_the_bike_operator_with_their_device_pseudonymised_and_car_parks_do_not() -> None:
    trip = _trip()
    car_park = trip | {"kind": "parking_occupancy", "device_id": "parking-17300-0016"}
    [release] = _samples().events("mobility", [car_park, trip], JUNE)
    assert release.topic == "zc.share.yelo-operator"
    [shared] = json.loads(release.value)
    assert shared == trip | {"device_id": Pseudonymiser(KEYS)("bike-0042")}
    assert b"parking-17300-0016" not in release.value


def test_the_bike_operator_receives_nothing_before_or_after_its_agreement() -> None:
    engine = _samples()
    assert engine.events("mobility", [_trip()], datetime(2026, 5, 31, 21, 59, 59, tzinfo=UTC)) == []
    assert len(engine.events("mobility", [_trip()], datetime(2026, 5, 31, 22, tzinfo=UTC))) == 1
    assert engine.events("mobility", [_trip()], datetime(2027, 5, 31, 22, tzinfo=UTC)) == []


def test_open_data_hides_metered_energy_below_the_territory_and_publishes_the_rest() -> None:
    updates = [
        _cell("energy_consumed_kwh", "1d", {"commune": "17300"}),
        _cell("passenger_km", "1d", {"commune": "17300", "mode": "bus"}),
        _cell("energy_consumed_kwh", "1d", {}, value=0.0),
    ]
    [release] = _samples().indicators(updates, JUNE)
    assert release.topic == "zc.share.public" and release.key is None
    assert (release.items, release.secret) == (3, 1)
    energy, transit, territory = json.loads(release.value)
    assert (energy["value"], energy["status"]) == (None, "secret")
    assert (transit["value"], transit["status"]) == (12.5, "published")
    assert (territory["value"], territory["status"]) == (0.0, "published")
    assert transit["attribution"].endswith("Licence Ouverte 2.0 (Etalab)")
    assert transit["revision"] == 2 and transit["final"] is True


def test_open_data_of_an_hour_or_of_an_indicator_it_does_not_name_goes_nowhere() -> None:
    engine = _samples()
    assert engine.indicators([_cell("energy_consumed_kwh", "1h", {"commune": "17300"})], JUNE) == []
    assert engine.indicators([_cell("heating_degree_days", "1d", {"commune": "17300"})], JUNE) == []
    assert not engine.wants_indicator("heating_degree_days") and engine.wants_indicator("passenger_km")


def test_the_territorys_total_goes_to_the_public_and_to_the_region() -> None:
    releases = _samples().indicators([_cell("territory_emissions_kgco2e", "1d", {}, value=0.0)], JUNE)
    assert sorted(r.topic for r in releases) == ["zc.share.public", "zc.share.regional-observatory"]
    assert all(json.loads(r.value)[0]["value"] == 0.0 and r.secret == 0 for r in releases)


def test_the_region_receives_territory_cells_of_an_hour_and_more_only() -> None:
    engine = _samples()
    [hourly] = engine.indicators([_cell("territory_trajectory_ratio", "1h", {})], JUNE)
    assert hourly.topic == "zc.share.regional-observatory"
    assert engine.indicators([_cell("territory_trajectory_ratio", "15m", {})], JUNE) == []
    assert engine.indicators([_cell("territory_trajectory_ratio", "1d", {"commune": "17300"})], JUNE) == []


def test_an_engine_without_agreements_wants_and_shares_nothing() -> None:
    engine = SharingEngine(Pseudonymiser(KEYS))
    assert not any(engine.wants_family(f) for f in FAMILIES)
    assert not any(engine.wants_indicator(i) for i in INDICATOR_NAMES)
    assert engine.events("energy", [_reading("tertiary")], JUNE) == []
    assert engine.indicators([_cell("territory_emissions_kgco2e", "1d", {})], JUNE) == []
    assert engine.take_tallies() == {}


def test_the_samples_want_energy_and_mobility_but_not_environment() -> None:
    engine = _samples()
    assert [f for f in FAMILIES if engine.wants_family(f)] == ["energy", "mobility"]
    engine.revoke("urn:zerocarbon:agreement:lru-energy-research")
    assert [f for f in FAMILIES if engine.wants_family(f)] == ["mobility"]


def test_replacing_the_agreements_drops_those_not_given_again() -> None:
    engine = _samples()
    engine.replace([_sample("yelo-mobility-planning")])
    assert list(engine.agreements) == ["urn:zerocarbon:agreement:yelo-bike-planning"]
    assert engine.events("energy", [_reading("residential")], JUNE) == []
    assert engine.indicators([_cell("territory_emissions_kgco2e", "1d", {})], JUNE) == []


def test_a_tally_counts_the_secret_cells_of_every_release() -> None:
    engine = _samples()
    engine.indicators([_cell("energy_consumed_kwh", "1d", {"commune": "17300"})], JUNE)
    engine.indicators(
        [_cell("emissions_kgco2e", "1d", {"commune": "17000"}), _cell("passenger_km", "ytd", {})], JUNE
    )
    [(agreement, tally)] = engine.take_tallies().values()
    assert agreement.party == "public"
    assert (tally.records, tally.items, tally.secret) == (2, 3, 2)


def test_a_revoked_agreements_tally_is_still_taken() -> None:
    engine = _samples()
    engine.events("energy", [_reading("residential"), _reading("tertiary")], JUNE)
    engine.revoke("urn:zerocarbon:agreement:lru-energy-research")
    assert engine.events("energy", [_reading("residential")], JUNE) == []
    [(agreement, tally)] = engine.take_tallies().values()
    assert agreement.uid == "urn:zerocarbon:agreement:lru-energy-research"
    assert (tally.records, tally.items, tally.secret) == (1, 2, 0)
    assert tally.first_time == tally.last_time == EIGHT


def _lru_with(**duties: list[str]) -> Agreement:
    """The research sample with its field duties replaced (anonymize=..., omit=...)."""
    document: dict[str, Any] = json.loads(
        (SAMPLES_DIR / "lru-energy-research.jsonld").read_text(encoding="utf-8")
    )
    permission = document["permission"][0]
    permission["duty"] = [d for d in permission["duty"] if not isinstance(d["action"], list)]
    for action, fields in (("odrl:anonymize", duties.get("anonymize")), ("zc:omit", duties.get("omit"))):
        if fields:
            refinement = [{"leftOperand": "zc:field", "operator": "isAnyOf", "rightOperand": fields}]
            permission["duty"].append({"action": [{"rdf:value": {"@id": action}, "refinement": refinement}]})
    return parse_agreement(document, INDICATOR_NAMES)


def test_a_new_version_of_an_agreement_is_named_by_the_releases_and_tallied_apart() -> None:
    first, second = _sample("lru-energy-research"), _lru_with(anonymize=["producer_id", "commune"])
    assert first.uid == second.uid and first.version != second.version
    engine = _engine([first])
    [before] = engine.events("energy", [_reading("tertiary")], JUNE)
    engine.grant(second)
    [after] = engine.events("energy", [_reading("tertiary"), _reading("industry")], JUNE)
    assert dict(before.headers)[VERSION_HEADER] == first.version.encode()
    assert dict(after.headers)[VERSION_HEADER] == second.version.encode()
    assert json.loads(after.value)[0]["commune"] == Pseudonymiser(KEYS)("17300")
    taken = engine.take_tallies()
    assert {key: tally.items for key, (_, tally) in taken.items()} == {
        (first.uid, first.version): 1,
        (second.uid, second.version): 2,
    }
    assert taken[(first.uid, first.version)][0] is first


def test_an_agreement_may_omit_event_time_and_its_releases_are_still_timed_by_it() -> None:
    engine = _engine([_lru_with(omit=["ingestion_time", "event_time"])])
    [release] = engine.events("energy", [_reading("tertiary")], JUNE)
    assert "event_time" not in json.loads(release.value)[0]
    assert release.first_time == release.last_time == EIGHT


def test_an_agreement_pseudonymising_event_time_still_times_its_releases_by_it() -> None:
    [release] = _engine([_lru_with(anonymize=["event_time"])]).events("energy", [_reading("tertiary")], JUNE)
    assert json.loads(release.value)[0]["event_time"] == Pseudonymiser(KEYS)("2026-09-15T08:00:00Z")
    assert release.first_time == release.last_time == EIGHT


@pytest.mark.parametrize(
    ("agreement", "family", "event", "field"),
    [
        (_lru_with(anonymize=["quantity"]), "energy", _reading("tertiary"), "quantity"),
        (_lru_with(anonymize=["interval_start"]), "energy", _reading("tertiary"), "interval_start"),
        (
            parse_agreement(
                agreement_document(
                    "air",
                    party="lru-lab",
                    detail=Detail.PSEUDONYMISED_EVENTS,
                    targets=["urn:zerocarbon:family:environment", "urn:zerocarbon:kind:traffic_count"],
                    purposes=[Purpose.SCIENTIFIC_RESEARCH],
                    start=T0,
                    anonymize=["location", "lane_id"],
                ),
                INDICATOR_NAMES,
            ),
            "environment",
            {
                "producer_id": "atmo",
                "event_time": "2026-09-15T08:00:00Z",
                "location": {"lat": 46.1, "lon": -1.1},
            },
            "location",
        ),
    ],
    ids=["a-number", "a-text", "an-object"],
)
def test_a_pseudonymised_field_of_any_type_goes_out_as_a_pseudonym(
    agreement: Agreement, family: str, event: Event, field: str
) -> None:
    [release] = _engine([agreement]).events(family, [event], JUNE)
    assert PSEUDONYM.match(json.loads(release.value)[0][field])


def test_the_first_time_of_a_release_is_its_earliest_event_to_the_fraction_of_a_second() -> None:
    whole, half = _reading("tertiary"), _reading("tertiary") | {"event_time": "2026-09-15T08:00:00.500000Z"}
    [release] = _engine([_sample("lru-energy-research")]).events("energy", [half, whole], JUNE)
    assert (release.first_time, release.last_time) == (EIGHT, EIGHT + timedelta(milliseconds=500))


def test_the_same_event_shared_under_two_agreements_gets_each_ones_duties() -> None:
    plain, hidden = _sample("lru-energy-research"), _lru_with(omit=["quantity"], anonymize=["commune"])
    other = parse_agreement(hidden.document | {"uid": "urn:zerocarbon:agreement:lru-other"}, INDICATOR_NAMES)
    first, second = _engine([plain, other]).events("energy", [_reading("residential")], JUNE)
    one, two = json.loads(first.value)[0], json.loads(second.value)[0]
    assert one["quantity"] == 1.25 and one["commune"] == "17300"
    assert "quantity" not in two and two["commune"] == Pseudonymiser(KEYS)("17300")
    assert one["meter_id"] == two["meter_id"] == Pseudonymiser(KEYS)("09876543210123")


# --- Known defects ----------------------------------------------------------------------


def test_a_record_the_engine_fails_on_leaves_nothing_in_the_tallies() -> None:
    def yelo(uid: str, kind: str) -> Agreement:
        document = _sample("yelo-mobility-planning").document | {"uid": f"urn:zerocarbon:agreement:{uid}"}
        permission = document["permission"][0] | {"target": [f"urn:zerocarbon:kind:{kind}"]}
        return parse_agreement(document | {"permission": [permission]}, INDICATOR_NAMES)

    engine = _engine([yelo("trips", "bike_trip"), yelo("stations", "bike_station_status")])
    station = _trip("station-3", kind="bike_station_status", event_time="not an instant")
    with pytest.raises(ValueError):
        engine.events("mobility", [_trip(), station], JUNE)
    assert engine.take_tallies() == {}
