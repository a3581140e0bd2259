"""One bad input each: the dead letter says which field or what problem, and keeps the bytes.

The expected ``type`` of each problem is the one docs/contracts.md promises producers.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from reference.loader import load_reference
from schemas.dead_letter import DeadLetter, Origin
from schemas.families import FAMILIES
from streams.validation.deduplication import RecentEventIds
from streams.validation.stage import Accepted, Duplicate, validate_payload

REF = load_reference()
NOW = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)
ORIGIN = Origin(transport="mqtt", topic="zc/energy/elec-17300-0001")

# A residential electricity meter (36 kVA category): 1.2 kWh over a quarter of an hour.
METER_READING: dict[str, Any] = {
    "event_id": "enedis-elec-17300-0001-20261201T1145",
    "producer_id": "enedis",
    "event_time": "2026-12-01T12:45:00+01:00",
    "meter_id": "elec-17300-0001",
    "commune": "17300",
    "sector": "residential",
    "carrier": "electricity",
    "quantity": 1.2,
    "unit": "kWh",
    "kind": "interval",
    "interval_start": "2026-12-01T12:30:00+01:00",
}
AIR_READING: dict[str, Any] = {
    "event_id": "aq-17300-0001-20261201T1145",
    "producer_id": "atmo-na",
    "event_time": "2026-12-01T11:45:00Z",
    "sensor_id": "aq-17300-0001",
    "commune": "17300",
    "quantity": "no2",
    "value": 23.5,
    "unit": "ug/m3",
}
BIKE_TRIP: dict[str, Any] = {
    "event_id": "yelo-trip-42",
    "producer_id": "yelo",
    "event_time": "2026-12-01T11:40:00Z",
    "device_id": "bike-17300-0001",
    "commune": "17300",
    "kind": "bike_trip",
    "started_at": "2026-12-01T11:20:00Z",
    "distance_km": 4.2,
}


def validate(family: str, raw: bytes) -> Accepted | Duplicate | DeadLetter:
    return validate_payload(FAMILIES[family], raw, ORIGIN, REF, NOW)


def meter_reading(**changes: Any) -> bytes:
    return json.dumps(METER_READING | changes).encode()


def refused(family: str, raw: bytes) -> DeadLetter:
    """The dead letter for ``raw``, checked for what every dead letter must hold."""
    outcome = validate(family, raw)
    assert isinstance(outcome, DeadLetter), outcome
    assert outcome.original_payload() == raw
    assert outcome.payload_size == len(raw)
    assert outcome.family == family
    assert outcome.stage == "validation"
    assert outcome.origin == ORIGIN
    assert outcome.failed_at == NOW
    assert outcome.reason == (
        f"{outcome.errors[0].path}: {outcome.errors[0].message}"
        if outcome.errors[0].path
        else outcome.errors[0].message
    )
    # The record itself must travel on the dead-letter topic and come back identical.
    assert DeadLetter.model_validate_json(outcome.model_dump_json(by_alias=True)) == outcome
    return outcome


def problems(letter: DeadLetter) -> dict[str, str]:
    return {p.path: p.type for p in letter.errors}


def test_the_reference_payloads_of_this_file_are_accepted() -> None:
    assert isinstance(validate("energy", meter_reading()), Accepted)
    assert isinstance(validate("environment", json.dumps(AIR_READING).encode()), Accepted)
    assert isinstance(validate("mobility", json.dumps(BIKE_TRIP).encode()), Accepted)


def test_malformed_json_is_refused_as_invalid_json() -> None:
    raw = meter_reading()[:-7]  # truncated in transit
    letter = refused("energy", raw)
    assert problems(letter) == {"": "json_invalid"}
    assert letter.reason.startswith("Invalid JSON")
    assert letter.payload_encoding == "utf-8"
    assert letter.payload == raw.decode()
    assert letter.producer_id == "enedis"  # still read from the broken payload


@pytest.mark.parametrize(
    ("field", "value", "error_type"),
    [
        ("quantity", "a lot", "float_type"),
        ("quantity", [1.2], "float_type"),
        ("meter_id", 42, "string_type"),
        ("carrier", "coal", "enum"),
        ("event_time", {"at": "noon"}, "datetime_type"),
    ],
)
def test_a_wrong_type_is_refused_naming_the_field(field: str, value: Any, error_type: str) -> None:
    letter = refused("energy", meter_reading(**{field: value}))
    assert problems(letter) == {field: error_type}
    assert letter.reason.startswith(f"{field}: ")


def test_missing_fields_are_each_named() -> None:
    payload = {k: v for k, v in METER_READING.items() if k not in ("commune", "quantity")}
    letter = refused("energy", json.dumps(payload).encode())
    assert problems(letter) == {"commune": "missing", "quantity": "missing"}
    assert letter.reason == "commune: Field required"


def test_a_missing_mobility_field_is_named_with_the_kind() -> None:
    payload = {k: v for k, v in BIKE_TRIP.items() if k != "distance_km"}
    letter = refused("mobility", json.dumps(payload).encode())
    assert problems(letter) == {"bike_trip.distance_km": "missing"}


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_literals_are_refused_as_not_finite(literal: str) -> None:
    raw = meter_reading(quantity=0.0).replace(b'"quantity": 0.0', f'"quantity": {literal}'.encode())
    assert literal.encode() in raw
    letter = refused("energy", raw)
    assert problems(letter) == {"quantity": "finite_number"}
    assert letter.reason == "quantity: Input should be a finite number"


@pytest.mark.parametrize("literal", ["NaN", "Infinity"])
def test_nan_and_infinity_are_refused_in_sensor_values_and_coordinates(literal: str) -> None:
    payload = AIR_READING | {"value": "VALUE", "location": {"lat": 46.16, "lon": "LON"}}
    raw = json.dumps(payload).replace('"VALUE"', literal).replace('"LON"', literal).encode()
    letter = refused("environment", raw)
    assert problems(letter) == {"value": "finite_number", "location.lon": "finite_number"}


def test_negative_consumption_is_refused() -> None:
    letter = refused("energy", meter_reading(quantity=-1.2))
    assert problems(letter) == {"quantity": "greater_than_equal"}
    assert letter.reason == "quantity: Input should be greater than or equal to 0"


def test_a_negative_count_is_refused() -> None:
    payload = BIKE_TRIP | {"distance_km": -3}
    letter = refused("mobility", json.dumps(payload).encode())
    assert problems(letter) == {"bike_trip.distance_km": "greater_than_equal"}


def test_power_beyond_the_meter_category_is_refused_as_beyond_device() -> None:
    # 1000 kWh in a quarter of an hour is a mean 4 MW, from a 36 kVA household meter.
    letter = refused("energy", meter_reading(quantity=1000))
    assert problems(letter) == {"quantity": "plausibility.beyond_device"}
    assert "4000 kW" in letter.reason
    assert "36 kW" in letter.reason


def test_a_pollutant_beyond_the_sensor_range_is_refused() -> None:
    letter = refused("environment", json.dumps(AIR_READING | {"value": 25_000}).encode())
    assert problems(letter) == {"value": "plausibility.beyond_device"}
    assert "[0, 2000]" in letter.reason


def test_an_unknown_device_is_refused_naming_it() -> None:
    letter = refused("energy", meter_reading(meter_id="elec-99999-0001"))
    assert problems(letter) == {"meter_id": "plausibility.unknown_device"}
    assert "'elec-99999-0001' is not in the device registry" in letter.reason


def test_a_device_of_another_family_is_refused() -> None:
    letter = refused("energy", meter_reading(meter_id="aq-17300-0001"))
    assert problems(letter) == {"meter_id": "plausibility.wrong_family"}
    assert "environment" in letter.reason


def test_a_commune_outside_the_territory_is_refused() -> None:
    letter = refused("energy", meter_reading(commune="75056"))  # Paris
    assert problems(letter) == {"commune": "plausibility.outside_territory"}
    assert letter.reason == "commune: 75056 is not one of the 28 communes of the territory"


def test_a_far_future_timestamp_is_refused_as_a_clock_problem() -> None:
    letter = refused(
        "energy",
        meter_reading(event_time="2027-06-01T12:00:00+02:00", interval_start="2027-06-01T11:45:00+02:00"),
    )
    assert problems(letter) == {"event_time": "plausibility.future"}
    assert "check the device's clock" in letter.reason


def test_a_timestamp_just_inside_the_clock_tolerance_is_accepted() -> None:
    # 299 s ahead of the platform: within max_future_seconds (300), a drifting clock.
    raw = meter_reading(event_time="2026-12-01T12:04:59Z", interval_start="2026-12-01T11:49:59Z")
    assert isinstance(validate("energy", raw), Accepted)


def test_a_too_old_timestamp_is_refused() -> None:
    letter = refused(
        "energy", meter_reading(event_time="2025-01-01T00:15:00Z", interval_start="2025-01-01T00:00:00Z")
    )
    assert problems(letter) == {"event_time": "plausibility.too_old"}


def test_a_naive_timestamp_is_refused() -> None:
    letter = refused("energy", meter_reading(event_time="2026-12-01T11:45:00"))
    assert problems(letter) == {"event_time": "timezone_aware"}
    assert letter.reason == "event_time: Input should have timezone info"


def test_an_instant_utc_cannot_hold_is_refused_naming_the_field() -> None:
    # Valid as written, but one minute before year 1 in UTC: astimezone raises OverflowError,
    # which used to escape validation and stop the worker instead of making a dead letter.
    letter = refused("energy", meter_reading(event_time="0001-01-01T00:00:00+00:01"))
    assert problems(letter) == {"event_time": "value_error"}
    assert "out of the datetime range once converted to UTC" in letter.reason


def test_an_inconsistent_interval_names_the_field_at_fault() -> None:
    letter = refused("energy", meter_reading(interval_start="2026-12-01T13:00:00+01:00"))
    assert problems(letter) == {"interval_start": "value_error"}
    assert "must be before event_time" in letter.reason


def test_a_unit_of_another_carrier_is_refused() -> None:
    letter = refused("energy", meter_reading(unit="L"))
    assert problems(letter) == {"unit": "value_error"}
    assert "'L' is not valid for carrier 'electricity'" in letter.reason


def test_invalid_utf8_is_kept_as_base64_and_decodes_to_the_exact_bytes() -> None:
    # A Latin-1 "é" inside an otherwise valid reading.
    raw = meter_reading(event_id="ENEDIS-CAFE").replace(b"CAFE", b"caf\xe9")
    letter = refused("energy", raw)
    assert problems(letter) == {"": "invalid_utf8"}
    assert "not UTF-8" in letter.reason
    assert letter.payload_encoding == "base64"
    assert base64.b64decode(letter.payload) == raw
    assert letter.original_payload() == raw
    assert letter.producer_id == "enedis"


def test_a_5_mb_payload_is_refused_as_too_large_and_kept_whole() -> None:
    padding = "x" * (5 * 1024 * 1024)
    raw = meter_reading(event_id="big", padding=padding)
    assert len(raw) > 5 * 1024 * 1024
    letter = refused("energy", raw)
    assert problems(letter) == {"": "payload_too_large"}
    assert letter.reason == f"{len(raw)} bytes exceeds {REF.bounds.payload.max_bytes}"
    assert letter.payload_encoding == "utf-8"
    assert len(letter.payload) == len(raw)


def test_a_payload_of_exactly_the_size_limit_is_still_validated() -> None:
    limit = REF.bounds.payload.max_bytes
    raw = meter_reading()
    raw = raw[:-1] + b" " * (limit - len(raw)) + b"}"  # JSON allows trailing whitespace
    assert len(raw) == limit
    assert isinstance(validate("energy", raw), Accepted)


def test_a_resent_event_is_a_duplicate_not_a_second_reading() -> None:
    recent = RecentEventIds(horizon=600)
    raw = meter_reading()
    first = validate_payload(FAMILIES["energy"], raw, ORIGIN, REF, NOW, recent, 0.0)
    again = validate_payload(FAMILIES["energy"], raw, ORIGIN, REF, NOW, recent, 1.0)
    assert isinstance(first, Accepted)
    assert again == Duplicate("enedis", METER_READING["event_id"], producer="enedis")


# Defects found by these tests and since fixed: the tests guard the fixes.


@pytest.mark.parametrize("kind", [None, "bike_ride", ["bike_trip"]])
def test_a_missing_or_unknown_mobility_kind_names_the_kind_field(kind: Any) -> None:
    payload = {k: v for k, v in BIKE_TRIP.items() if k != "kind"}
    if kind is not None:
        payload["kind"] = kind
    letter = refused("mobility", json.dumps(payload).encode())
    assert [p.path for p in letter.errors] == ["kind"]


@pytest.mark.parametrize(
    ("family", "payload", "field"),
    [
        ("energy", METER_READING | {"quantity": True}, "quantity"),
        ("energy", METER_READING | {"quantity": "1.2"}, "quantity"),
        ("mobility", BIKE_TRIP | {"distance_km": True}, "distance_km"),
        ("mobility", BIKE_TRIP | {"electric": "yes"}, "electric"),
    ],
)
def test_a_value_the_published_json_schema_refuses_is_refused(
    family: str, payload: dict[str, Any], field: str
) -> None:
    letter = refused(family, json.dumps(payload).encode())
    assert any(p.path.split(".")[-1] == field for p in letter.errors)
