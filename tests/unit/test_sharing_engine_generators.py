"""The properties prove nothing if their random inputs are not what the stage reads: every generated
event and update must be valid under the contracts."""

from __future__ import annotations

import json
from collections.abc import Callable

from hypothesis import given, settings

from schemas.energy import EnergyReading
from schemas.environment import EnvironmentReading
from schemas.indicator import IndicatorUpdate
from schemas.mobility import MOBILITY_ADAPTER
from sharing.event_kinds import KIND_FAMILY, KIND_FIELDS
from tests.unit.sharing_engine_expectations import _kind
from tests.unit.sharing_engine_fixtures import EVENTS_OF, FAMILIES, RECORDS, Record, Update, indicator_updates

VALIDATE: dict[str, Callable[[str], object]] = {
    "energy": EnergyReading.model_validate_json,
    "environment": EnvironmentReading.model_validate_json,
    "mobility": MOBILITY_ADAPTER.validate_json,
}


def test_the_families_are_those_of_the_event_kinds() -> None:
    assert set(FAMILIES) == set(KIND_FAMILY.values())
    assert set(EVENTS_OF) == set(FAMILIES)


@settings(max_examples=100, deadline=None)
@given(RECORDS, indicator_updates())
def test_the_generated_events_and_updates_are_valid_under_the_contracts(
    record: Record, update: Update
) -> None:
    family, events = record
    for e in events:
        VALIDATE[family](json.dumps(e))
        assert set(e) <= KIND_FIELDS[_kind(family, e)]
    IndicatorUpdate.model_validate_json(json.dumps(update))
