"""An agreement the loader misreads grants what the producer did not mean: the shipped samples, and the
other spellings the profile allows, must load into exactly the terms they say."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sharing.agreement_terms import WINDOW_ORDER, Detail, Purpose
from sharing.agreements import Targets, load_agreement_file
from tests.unit.agreement_fixtures import (
    CEST,
    CET,
    INDICATOR_NAMES,
    SAMPLES,
    _changed,
    _constraint,
    _delete_within,
    _load,
    _sample,
    both,
    constraints,
    duties,
    permission_setting,
)


def test_the_samples_are_the_four_documented_agreements() -> None:
    assert [p.stem for p in SAMPLES] == [
        "lru-energy-research",
        "public-open-indicators",
        "region-territory-steering",
        "yelo-mobility-planning",
    ]


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.stem)
def test_each_sample_loads_with_its_document_verbatim(path: Path) -> None:
    agreement = load_agreement_file(path, INDICATOR_NAMES)
    assert agreement.document == json.loads(path.read_text(encoding="utf-8"))
    assert agreement.assigner == "cda-lr"
    assert agreement.attribution.startswith(("Données : ", "Communauté d'Agglomération de La Rochelle"))


def test_the_energy_research_agreement_reads_back_its_terms() -> None:
    agreement = _load(_sample("lru-energy-research"))
    assert agreement.uid == "urn:zerocarbon:agreement:lru-energy-research"
    assert agreement.name == "lru-energy-research"
    assert agreement.party == "lru-lab"
    assert agreement.targets == Targets(families=frozenset({"energy"}))
    assert agreement.producers == {"enedis", "grdf"}
    assert agreement.purposes == (Purpose.SCIENTIFIC_RESEARCH,)
    assert agreement.detail is Detail.PSEUDONYMISED_EVENTS
    assert agreement.minimum_window is None
    assert agreement.valid_from == datetime(2026, 1, 1, tzinfo=CET)
    assert agreement.valid_until == datetime(2029, 1, 1, tzinfo=CET)
    assert agreement.retention == timedelta(days=365)
    assert agreement.omit_fields == {"ingestion_time"}
    assert agreement.pseudonymise_fields == {"producer_id"}
    assert "convention de recherche LRU-2026-04" in agreement.attribution


def test_the_open_data_agreement_reads_back_its_terms() -> None:
    agreement = _load(_sample("public-open-indicators"))
    assert agreement.uid == "urn:zerocarbon:agreement:public-open-indicators"
    assert agreement.party == "public"
    assert agreement.targets == Targets(
        indicators=frozenset(
            {
                "energy_consumed_kwh",
                "emissions_kgco2e",
                "passenger_km",
                "mobility_emissions_kgco2e",
                "parking_occupancy_ratio",
                "environment_value",
                "territory_emissions_kgco2e",
                "territory_net_emissions_kgco2e",
            }
        )
    )
    assert agreement.producers is None
    assert agreement.purposes == (Purpose.PUBLIC_INFORMATION,)
    assert agreement.detail is Detail.COMMUNE_AGGREGATES
    assert agreement.minimum_window == "1d"
    assert agreement.valid_from == datetime(2026, 1, 1, tzinfo=CET)
    assert agreement.valid_until is None
    assert agreement.retention is None  # open data: no retention limit
    assert agreement.omit_fields == agreement.pseudonymise_fields == frozenset()
    assert agreement.attribution.endswith("Licence Ouverte 2.0 (Etalab)")


def test_the_regional_steering_agreement_reads_back_its_terms() -> None:
    agreement = _load(_sample("region-territory-steering"))
    assert agreement.uid == "urn:zerocarbon:agreement:areca-territory-steering"
    assert agreement.party == "regional-observatory"
    assert agreement.targets.indicators == {
        "territory_emissions_kgco2e",
        "territory_trajectory_ratio",
        "territory_net_emissions_kgco2e",
        "territory_net_trajectory_ratio",
    }
    assert not agreement.targets.families and not agreement.targets.kinds
    assert agreement.purposes == (Purpose.TERRITORIAL_STEERING, Purpose.PUBLIC_INFORMATION)
    assert agreement.detail is Detail.TERRITORY_AGGREGATES
    assert agreement.minimum_window == "1h"
    assert agreement.valid_from == datetime(2026, 9, 1, tzinfo=CEST)
    assert agreement.valid_until == datetime(2031, 1, 1, tzinfo=CET)
    assert agreement.retention == timedelta(days=3650)


def test_the_bike_planning_agreement_reads_back_its_terms() -> None:
    agreement = _load(_sample("yelo-mobility-planning"))
    assert agreement.uid == "urn:zerocarbon:agreement:yelo-bike-planning"
    assert agreement.party == "yelo-operator"
    assert agreement.targets == Targets(kinds=frozenset({"bike_trip", "bike_station_status"}))
    assert agreement.targets.covers_kind("bike_trip") and not agreement.targets.covers_kind(
        "parking_occupancy"
    )
    assert agreement.producers is None
    assert agreement.purposes == (Purpose.MOBILITY_PLANNING,)
    assert agreement.detail is Detail.PSEUDONYMISED_EVENTS
    assert agreement.valid_from == datetime(2026, 6, 1, tzinfo=CEST)
    assert agreement.valid_until == datetime(2027, 6, 1, tzinfo=CEST)
    assert agreement.retention == timedelta(days=90)
    assert agreement.pseudonymise_fields == {"device_id"} and agreement.omit_fields == frozenset()


def test_a_family_target_covers_each_of_its_kinds() -> None:
    targets = _load(_sample("lru-energy-research")).targets
    assert targets.covers_kind("energy_reading")
    assert not targets.covers_kind("environment_reading") and not targets.covers_kind("bike_trip")
    assert not targets.covers_kind("no_such_kind")


def test_terms_may_be_written_with_full_iris() -> None:
    document = _changed(
        "yelo-mobility-planning",
        both(
            permission_setting("action", "http://www.w3.org/ns/odrl/2/use"),
            constraints(
                drop=("purpose",),
                add=(
                    _constraint(
                        "http://www.w3.org/ns/odrl/2/purpose",
                        "odrl:isAnyOf",
                        ["urn:zerocarbon:odrl:mobility-planning", "zc:network-operation"],
                    ),
                ),
            ),
        ),
    )
    assert _load(document).purposes == (Purpose.MOBILITY_PLANNING, Purpose.NETWORK_OPERATION)


def test_an_instant_may_be_a_plain_string_in_utc() -> None:
    document = _changed(
        "yelo-mobility-planning",
        constraints(drop=("dateTime",), add=(_constraint("dateTime", "gteq", "2026-06-01T00:00:00Z"),)),
    )
    agreement = _load(document)
    assert agreement.valid_from == datetime(2026, 6, 1, tzinfo=UTC) and agreement.valid_until is None


def test_an_aggregate_agreement_without_a_window_receives_hours_and_beyond() -> None:
    agreement = _load(_changed("region-territory-steering", constraints(drop=("zc:window",))))
    assert agreement.minimum_window == "1h"
    assert [w for w in WINDOW_ORDER if agreement.window_allowed(w)] == ["1h", "1d", "1mo", "ytd"]


def test_the_public_may_also_be_given_a_retention() -> None:
    document = _changed("public-open-indicators", duties(add=(_delete_within("P30D"),)))
    assert _load(document).retention == timedelta(days=30)
