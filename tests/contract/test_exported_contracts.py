"""The exported contracts hold for third-party tools, not only for our own pydantic models.

`zerocarbon schemas export` output is checked the way a partner would check it:
check-jsonschema validates realistic samples (registry devices, territory communes,
timestamps with offsets) against each ``<Type>.schema.json``, and the official AsyncAPI
parser (tools/asyncapi-check) validates ``asyncapi.json``. Every valid sample must also be
accepted by the model, and every invalid one refused by both, so schema and model agree.
No broker is needed; the platform clock is fixed, so nothing depends on when the test runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from reference.loader import load_reference
from schemas.catalogue import FAMILY_MESSAGES, raw_topic
from schemas.dead_letter import DeadLetter, Origin
from schemas.families import FAMILIES
from schemas.json_schemas import EVENT_TYPES
from streams.validation import Accepted, validate_payload
from zerocarbon.settings import Settings

REPO = Path(__file__).resolve().parents[2]
CHECK_JSONSCHEMA = str(Path(sys.executable).with_name("check-jsonschema"))
ASYNCAPI_CHECK = REPO / "tools" / "asyncapi-check"
REFERENCE = load_reference()
MODELS = {model.__name__: model for model in EVENT_TYPES}
FAMILY_OF = {name: family for family, names in FAMILY_MESSAGES.items() for name in names}
# The platform clock for the plausibility rules: fixed, a little after the samples' times.
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)

Payload = dict[str, Any]


# --- samples ------------------------------------------------------------------------------


def _registered(device_id: str, field: str, schema: str) -> Payload:
    """The fields a registered device fills in: its id, its commune and its producer."""
    device = REFERENCE.devices[device_id]  # KeyError: the sample names a device outside the registry
    assert device.commune in REFERENCE.communes
    return {"schema": schema, field: device_id, "commune": device.commune, "producer_id": device.producer_id}


def _mobility(device_id: str, kind: str, event_id: str, event_time: str, **fields: Any) -> Payload:
    return {
        **_registered(device_id, "device_id", "mobility.event"),
        "event_id": event_id,
        "event_time": event_time,
        "kind": kind,
        **fields,
    }


ELECTRICITY = {
    **_registered("elec-17300-0001", "meter_id", "energy.reading"),
    "event_id": "enedis-elec-17300-0001-20260302T0800Z",
    "schema_version": 1,
    "event_time": "2026-03-02T09:00:00+01:00",
    "sector": "residential",
    "carrier": "electricity",
    "quantity": 0.84,
    "unit": "kWh",
    "kind": "interval",
    "interval_start": "2026-03-02T08:45:00+01:00",
}
NO2 = {
    **_registered("aq-17300-0001", "sensor_id", "environment.reading"),
    "event_id": "atmo-na-aq-17300-0001-0001842",
    "event_time": "2026-03-02T09:00:00+01:00",
    "location": {"lat": 46.1591, "lon": -1.1517},
    "quantity": "no2",
    "value": 23.4,
    "unit": "ug/m3",
}
SMOKE = {"device_id": "aq-17300-0001", "value": 21.5, "time": "2026-03-02T09:15:00+01:00"}
INDICATOR = {
    "schema": "indicator.update",
    "schema_version": 1,
    "indicator": "energy_consumed",
    "unit": "kWh",
    "window": "1h",
    "window_start": "2026-03-02T08:00:00+01:00",
    "window_end": "2026-03-02T09:00:00+01:00",
    "dimensions": {"commune": "17300", "sector": "residential", "carrier": "electricity"},
    "value": 1834.2,
    "final": True,
    "revision": 1,
    "updated_at": "2026-03-02T09:00:05.412+01:00",
}
REFUSED_PAYLOAD = json.dumps({**ELECTRICITY, "carrier": "coal"})
DEAD_LETTER = {
    "schema": "deadletter.record",
    "schema_version": 1,
    "family": "energy",
    "stage": "validation",
    "reason": "carrier: Input should be 'electricity', 'natural_gas', 'heat_network', 'heating_oil', "
    "'wood' or 'solar_pv'",
    "errors": [{"path": "carrier", "type": "enum", "message": "Input should be 'electricity', ..."}],
    "payload": REFUSED_PAYLOAD,
    "payload_encoding": "utf-8",
    "payload_size": len(REFUSED_PAYLOAD.encode()),
    "producer_id": "enedis",
    "origin": {"transport": "kafka", "topic": "zc.raw.energy", "partition": 2, "offset": 18734},
    "failed_at": "2026-03-02T08:00:01.250Z",
}
BIKE_TRIP = _mobility(
    "bike-17300-0001",
    "bike_trip",
    "yelo-trip-88412",
    "2026-03-02T08:31:00+01:00",
    started_at="2026-03-02T08:12:00+01:00",
    distance_km=3.8,
    electric=True,
)
BIKE_STATION = _mobility(
    "bike-17300-0001",
    "bike_station_status",
    "yelo-station-0001-20260302T0830",
    "2026-03-02T08:30:00+01:00",
    available_bike_number=7,
    free_slot_number=9,
    total_slot_number=16,
)
TRANSIT_VALIDATION = _mobility(
    "bus-17300-0001",
    "transit_validation",
    "yelo-validations-illico1-0815",
    "2026-03-02T08:15:00+01:00",
    mode="bus",
    line="illico-1",
    passengers=38,
    interval_start="2026-03-02T08:00:00+01:00",
)
TRANSIT_TRIP = _mobility(
    "seabus-17300-0001",
    "transit_trip",
    "yelo-seabus-run-2207",
    "2026-03-02T10:20:00+01:00",
    started_at="2026-03-02T10:00:00+01:00",
    distance_km=3.2,
    mode="sea_bus",
    line="bus-de-mer",
    passengers=54,
    energy_kwh=41.5,
)
TRAFFIC = _mobility(
    "traffic-17028-0001",
    "traffic_count",
    "cda-lr-traffic-17028-0001-0745",
    "2026-03-02T07:45:00Z",
    interval_start="2026-03-02T07:30:00Z",
    intensity=212,
    average_vehicle_speed=43.5,
    lane_id=1,
)
PARKING = _mobility(
    "parking-17300-0001",
    "parking_occupancy",
    "ville-lr-parking-0001-1100",
    "2026-03-02T11:00:00+01:00",
    occupied_spot_number=312,
    total_spot_number=450,
)
CHARGING = _mobility(
    "evse-17200-0001",
    "ev_charging_session",
    "cda-lr-evse-17200-0001-s5521",
    "2026-03-01T20:47:00+01:00",
    started_at="2026-03-01T18:05:00+01:00",
    energy_kwh=22.4,
)
CARSHARING = _mobility(
    "carsharing-17300-0001",
    "carsharing_trip",
    "yelo-carsharing-trip-3318",
    "2025-07-14T16:40:00+02:00",
    started_at="2025-07-14T14:55:00+02:00",
    distance_km=17.9,
    electric=True,
)

VALID: dict[str, list[Payload]] = {
    "SmokeReading": [SMOKE],
    "EnergyReading": [
        ELECTRICITY,
        {
            **_registered("gas-17028-0001", "meter_id", "energy.reading"),
            "event_id": "grdf-gas-17028-0001-20260302",
            "event_time": "2026-03-02T06:00:00Z",
            "sector": "residential",
            "carrier": "natural_gas",
            "quantity": 18342.7,
            "unit": "m3",
            "kind": "index",
        },
        {
            **_registered("pv-17274-0001", "meter_id", "energy.reading"),
            "event_id": "enedis-pv-17274-0001-20250714T1200Z",
            "event_time": "2025-07-14T14:00:00+02:00",
            "ingestion_time": "2025-07-14T12:00:03.120Z",
            "sector": "residential",
            "carrier": "solar_pv",
            "quantity": 1250,
            "unit": "Wh",
            "kind": "interval",
            "interval_start": "2025-07-14T13:00:00+02:00",
        },
    ],
    "EnvironmentReading": [
        NO2,
        {
            **_registered("temp-17200-0001", "sensor_id", "environment.reading"),
            "event_id": "lr-universite-temp-17200-0001-77120",
            "event_time": "2026-03-02T07:00:00Z",
            "quantity": "temperature",
            "value": 8.2,
            "unit": "Cel",
        },
        {
            **_registered("co2-17300-0001", "sensor_id", "environment.reading"),
            "event_id": "ville-lr-co2-17300-0001-0930",
            "event_time": "2026-03-02T09:30:00+01:00",
            "quantity": "co2_indoor",
            "value": 812,
            "unit": "ppm",
        },
    ],
    "BikeTrip": [BIKE_TRIP],
    "BikeStationStatus": [BIKE_STATION],
    "TransitValidation": [TRANSIT_VALIDATION],
    "TransitTrip": [TRANSIT_TRIP],
    "TrafficCount": [TRAFFIC],
    "ParkingOccupancy": [PARKING],
    "EvChargingSession": [CHARGING],
    "CarsharingTrip": [CARSHARING],
    "IndicatorUpdate": [INDICATOR],
    "DeadLetter": [DEAD_LETTER],
}


@dataclass(frozen=True)
class Invalid:
    """A sample both the schema and the model must refuse, and what check-jsonschema says."""

    label: str
    payload: Payload
    path: str  # JSON path check-jsonschema reports; "$" is the whole object
    message: str  # a fragment of its message


def _without(payload: Payload, field: str) -> Payload:
    return {key: value for key, value in payload.items() if key != field}


def _missing(payload: Payload, field: str) -> Invalid:
    return Invalid(f"missing-{field}", _without(payload, field), "$", f"'{field}' is a required property")


def _wrong(label: str, payload: Payload, path: str, message: str, **changes: Any) -> Invalid:
    return Invalid(label, {**payload, **changes}, path, message)


INVALID: dict[str, list[Invalid]] = {
    "SmokeReading": [
        _missing(SMOKE, "time"),
        _wrong("value-not-a-number", SMOKE, "$.value", "is not of type 'number'", value="twenty"),
        _wrong("time-without-offset", SMOKE, "$.time", "is not a 'date-time'", time="2026-03-02T09:15:00"),
        _wrong("device-id-with-space", SMOKE, "$.device_id", "does not match", device_id="aq 17300"),
    ],
    "EnergyReading": [
        _missing(ELECTRICITY, "meter_id"),
        _wrong("quantity-as-text", ELECTRICITY, "$.quantity", "is not of type 'number'", quantity="0.84 kWh"),
        _wrong("unknown-carrier", ELECTRICITY, "$.carrier", "is not one of", carrier="coal"),
        _wrong("unknown-sector", ELECTRICITY, "$.sector", "is not one of", sector="household"),
        _wrong("negative-quantity", ELECTRICITY, "$.quantity", "less than the minimum of 0", quantity=-1.5),
        _wrong("commune-by-name", ELECTRICITY, "$.commune", "does not match", commune="La Rochelle"),
        _wrong("other-family", ELECTRICITY, "$.schema", "was expected", schema="environment.reading"),
        _wrong("unknown-field", ELECTRICITY, "$", "Additional properties are not allowed", voltage=230),
    ],
    "EnvironmentReading": [
        _missing(NO2, "unit"),
        _wrong("value-as-text", NO2, "$.value", "is not of type 'number'", value="low"),
        _wrong("unknown-quantity", NO2, "$.quantity", "is not one of", quantity="so2"),
        _wrong(
            "latitude-out-of-range",
            NO2,
            "$.location",  # nullable, so check-jsonschema reports the anyOf
            "is not valid under any of the given schemas",
            location={"lat": 146.1591, "lon": -1.1517},
        ),
    ],
    "BikeTrip": [
        _missing(BIKE_TRIP, "started_at"),
        _wrong("other-kind", BIKE_TRIP, "$.kind", "'bike_trip' was expected", kind="scooter_trip"),
        _wrong("electric-as-text", BIKE_TRIP, "$.electric", "is not of type 'boolean'", electric="maybe"),
    ],
    "BikeStationStatus": [
        _missing(BIKE_STATION, "free_slot_number"),
        _wrong(
            "no-slot", BIKE_STATION, "$.total_slot_number", "less than the minimum of 1", total_slot_number=0
        ),
    ],
    "TransitValidation": [
        _missing(TRANSIT_VALIDATION, "interval_start"),
        _wrong("unknown-mode", TRANSIT_VALIDATION, "$.mode", "is not one of", mode="tram"),
    ],
    "TransitTrip": [
        _missing(TRANSIT_TRIP, "line"),
        _wrong(
            "fractional-passengers", TRANSIT_TRIP, "$.passengers", "not of type 'integer'", passengers=54.5
        ),
        _wrong("unknown-mode", TRANSIT_TRIP, "$.mode", "is not one of", mode="ferry"),
    ],
    "TrafficCount": [
        _missing(TRAFFIC, "intensity"),
        _wrong("negative-intensity", TRAFFIC, "$.intensity", "less than the minimum of 0", intensity=-3),
    ],
    "ParkingOccupancy": [
        _missing(PARKING, "total_spot_number"),
        _wrong(
            "occupancy-as-text",
            PARKING,
            "$.occupied_spot_number",
            "not of type 'integer'",
            occupied_spot_number="full",
        ),
    ],
    "EvChargingSession": [
        _missing(CHARGING, "energy_kwh"),
        _wrong("start-as-text", CHARGING, "$.started_at", "is not a 'date-time'", started_at="yesterday"),
    ],
    "CarsharingTrip": [
        _missing(CARSHARING, "distance_km"),
        _wrong("distance-as-text", CARSHARING, "$.distance_km", "is not of type 'number'", distance_km="far"),
    ],
    "IndicatorUpdate": [
        _missing(INDICATOR, "window_end"),
        _wrong("value-as-text", INDICATOR, "$.value", "is not of type 'number'", value="n/a"),
        _wrong("other-schema", INDICATOR, "$.schema", "was expected", schema="indicator.updated"),
        _wrong(
            "dimension-as-number",
            INDICATOR,
            "$.dimensions.commune",
            "is not of type 'string'",
            dimensions={"commune": 17300},
        ),
    ],
    "DeadLetter": [
        _missing(DEAD_LETTER, "origin"),
        _wrong(
            "unknown-encoding", DEAD_LETTER, "$.payload_encoding", "is not one of", payload_encoding="gzip"
        ),
        _wrong(
            "unknown-transport",
            DEAD_LETTER,
            "$.origin.transport",
            "is not one of",
            origin={"transport": "amqp", "topic": "zc.raw.energy"},
        ),
        _wrong("errors-as-text", DEAD_LETTER, "$.errors", "is not of type 'array'", errors="carrier"),
    ],
}


# --- tools --------------------------------------------------------------------------------


def _run(
    *command: str, timeout: float = 120, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, capture_output=True, text=True, cwd=REPO, timeout=timeout, env=env, check=False
    )


def _write(directory: Path, name: str, payload: Payload | str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.json"
    path.write_text(payload if isinstance(payload, str) else json.dumps(payload, indent=2), encoding="utf-8")
    return path


def _check_jsonschema(schema: Path, *instances: Path) -> subprocess.CompletedProcess[str]:
    return _run(
        CHECK_JSONSCHEMA, "--output-format", "json", "--schemafile", str(schema), *map(str, instances)
    )


def _origin(family: str) -> Origin:
    return Origin(transport="kafka", topic=raw_topic(family), partition=0, offset=0)


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The contracts as `zerocarbon schemas export` writes them."""
    directory = tmp_path_factory.mktemp("contracts")
    done = _run(sys.executable, "-m", "zerocarbon.cli", "schemas", "export", str(directory))
    assert done.returncode == 0, done.stderr
    return directory


@pytest.fixture(scope="module")
def asyncapi_validator(settings: Settings) -> Path:
    """validate.mjs next to the official parser, installed once per user in the cache folder."""
    env = {**os.environ, "ZC_CACHE_DIR": str(settings.cache_dir)}
    done = _run("bash", str(ASYNCAPI_CHECK / "install.sh"), timeout=600, env=env)
    assert done.returncode == 0, (
        f"tools/asyncapi-check/install.sh failed (Node.js >= 18 and npm needed):\n{done.stderr}"
    )
    return Path(done.stdout.strip().splitlines()[-1]) / "validate.mjs"


def _asyncapi_diagnostics(validator: Path, document: Path) -> tuple[int, list[dict[str, Any]]]:
    done = _run("node", str(validator), "--json", str(document))
    assert done.returncode in (0, 1), done.stderr
    diagnostics: list[dict[str, Any]] = json.loads(done.stdout)
    return done.returncode, diagnostics


# --- JSON Schema --------------------------------------------------------------------------


def test_every_exported_type_has_valid_and_invalid_samples(exported: Path) -> None:
    exported_types = {path.name.removesuffix(".schema.json") for path in exported.glob("*.schema.json")}
    assert exported_types == set(MODELS) == set(VALID) == set(INVALID)


def test_exported_schemas_are_valid_draft_2020_12(exported: Path) -> None:
    done = _run(CHECK_JSONSCHEMA, "--check-metaschema", *sorted(map(str, exported.glob("*.schema.json"))))
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("type_name", sorted(VALID))
def test_valid_samples_pass_check_jsonschema(exported: Path, tmp_path: Path, type_name: str) -> None:
    samples = [_write(tmp_path, f"{type_name}-{i}", sample) for i, sample in enumerate(VALID[type_name])]
    done = _check_jsonschema(exported / f"{type_name}.schema.json", *samples)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("type_name", sorted(VALID))
def test_valid_samples_are_accepted_by_the_model(type_name: str) -> None:
    for sample in VALID[type_name]:
        event = MODELS[type_name].model_validate_json(json.dumps(sample))
        assert json.loads(event.model_dump_json(by_alias=True, exclude_unset=True)).keys() == sample.keys()


@pytest.mark.parametrize("type_name", sorted(FAMILY_OF))
def test_valid_family_samples_pass_the_whole_validation_stage(type_name: str) -> None:
    """Registered device, commune of the territory, plausible values: the worker accepts them."""
    family = FAMILIES[FAMILY_OF[type_name]]
    for sample in VALID[type_name]:
        outcome = validate_payload(family, json.dumps(sample).encode(), _origin(family.name), REFERENCE, NOW)
        assert isinstance(outcome, Accepted), outcome
        assert type(outcome.event) is MODELS[type_name]


@pytest.mark.parametrize("type_name", sorted(INVALID))
def test_invalid_samples_fail_check_jsonschema_on_the_expected_field(
    exported: Path, tmp_path: Path, type_name: str
) -> None:
    cases = {
        _write(tmp_path, f"{type_name}-{case.label}", case.payload).name: case for case in INVALID[type_name]
    }
    done = _check_jsonschema(exported / f"{type_name}.schema.json", *(tmp_path / name for name in cases))
    assert done.returncode == 1, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["parse_errors"] == [], "the schema or a sample could not be read"
    for name, case in cases.items():
        errors = [e for e in report["errors"] if Path(e["filename"]).name == name]
        assert any(e["path"] == case.path and case.message in e["message"] for e in errors), (name, errors)


@pytest.mark.parametrize("type_name", sorted(INVALID))
def test_invalid_samples_are_refused_by_the_model(type_name: str) -> None:
    for case in INVALID[type_name]:
        with pytest.raises(ValidationError):
            MODELS[type_name].model_validate_json(json.dumps(case.payload))


def test_what_the_validation_stage_writes_passes_check_jsonschema(exported: Path, tmp_path: Path) -> None:
    """Accepted events (with ingestion_time) and dead letters, serialised as the agent does."""
    written: dict[str, list[Path]] = {}
    for type_name, family_name in FAMILY_OF.items():
        family = FAMILIES[family_name]
        cases: list[tuple[str, type]] = [(json.dumps(sample), Accepted) for sample in VALID[type_name]]
        cases += [(json.dumps(case.payload), DeadLetter) for case in INVALID[type_name]]
        cases.append(('{"not": "closed"', DeadLetter))  # not even JSON: dead-lettered verbatim
        for i, (raw, expected) in enumerate(cases):
            outcome = validate_payload(family, raw.encode(), _origin(family_name), REFERENCE, NOW)
            assert isinstance(outcome, expected), (raw, outcome)
            event = outcome.event if isinstance(outcome, Accepted) else outcome
            assert isinstance(event, BaseModel)
            name = type(event).__name__
            out = _write(tmp_path / name, f"{type_name}-{i}", event.model_dump_json(by_alias=True))
            written.setdefault(name, []).append(out)
    assert set(written) == set(FAMILY_OF) | {"DeadLetter"}
    for name, paths in sorted(written.items()):
        done = _check_jsonschema(exported / f"{name}.schema.json", *paths)
        assert done.returncode == 0, (name, done.stdout + done.stderr)


# --- AsyncAPI -----------------------------------------------------------------------------


def test_exported_asyncapi_passes_the_official_parser(exported: Path, asyncapi_validator: Path) -> None:
    code, diagnostics = _asyncapi_diagnostics(asyncapi_validator, exported / "asyncapi.json")
    assert [d for d in diagnostics if d["severity"] == "error"] == []
    assert code == 0


def _dangling_channel(doc: Payload) -> tuple[list[str], str]:
    name, operation = next(iter(doc["operations"].items()))
    operation["channel"] = {"$ref": "#/channels/no_such_channel"}
    return ["operations", name, "channel", "$ref"], "invalid-ref"


def _message_of_another_channel(doc: Payload) -> tuple[list[str], str]:
    name, operation = next(iter(doc["operations"].items()))
    own = doc["channels"][operation["channel"]["$ref"].rsplit("/", 1)[1]]["messages"]
    other, channel = next(
        (cid, ch) for cid, ch in doc["channels"].items() if not set(ch["messages"]) & set(own)
    )
    message = next(iter(channel["messages"]))
    operation["messages"] = [{"$ref": f"#/channels/{other}/messages/{message}"}]
    return ["operations", name, "messages", "0"], "asyncapi3-operation-messages-from-referred-channel"


def _payload_property_of_unknown_type(doc: Payload) -> tuple[list[str], str]:
    # The parser validates payload schemas too, so a bad JSON Schema from pydantic would show.
    name = next(key for key, schema in doc["components"]["schemas"].items() if "properties" in schema)
    field = next(iter(doc["components"]["schemas"][name]["properties"]))
    doc["components"]["schemas"][name]["properties"][field]["type"] = "decimal"
    return ["components", "schemas", name, "properties", field, "type"], "asyncapi-document-resolved"


@pytest.mark.parametrize(
    "breakage", [_dangling_channel, _message_of_another_channel, _payload_property_of_unknown_type]
)
def test_the_official_parser_rejects_a_broken_document(
    exported: Path,
    asyncapi_validator: Path,
    tmp_path: Path,
    breakage: Callable[[Payload], tuple[list[str], str]],
) -> None:
    doc = json.loads((exported / "asyncapi.json").read_text(encoding="utf-8"))
    path, rule = breakage(doc)
    broken = _write(tmp_path, "asyncapi", doc)
    code, diagnostics = _asyncapi_diagnostics(asyncapi_validator, broken)
    assert code == 1
    errors = [(d["code"], d["path"]) for d in diagnostics if d["severity"] == "error"]
    assert (rule, path) in errors, errors
