"""Sample payloads of every exported event type: valid ones, and invalid ones with the field
and the message a JSON Schema validator must report. Devices come from the registry,
communes from the territory, and timestamps carry their offsets."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from reference.loader import load_reference

REFERENCE = load_reference()

Payload = dict[str, Any]


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
EVIDENCE = {
    "schema": "causal.evidence",
    "schema_version": 1,
    "hypothesis": "traffic-drives-no2",
    "question": "Do more vehicles counted raise the NO2 measured in the same commune?",
    "cause": "traffic_vehicles",
    "effect": "environment_value{quantity=no2}",
    "confounders": ["environment_value{quantity=temperature}"],
    "commune": "17300",
    "window_start": "2026-02-02T08:00:00Z",
    "window_end": "2026-03-02T08:00:00Z",
    "status": "evidence",
    "lag_hours": 2,
    "effect_size": 0.031,
    "sign": 1,
    "p_value": 0.00012,
    "q": 0.05,
    "tests_in_run": 57,
    "n": 664,
    "ccf_lag_hours": 2,
    "ccf": 0.21,
    "method_version": "1",
    "computed_at": "2026-03-02T08:04:11Z",
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
    "CausalEvidence": [
        EVIDENCE,
        {
            **EVIDENCE,
            "status": "insufficient_data",
            "detail": "too few complete hours to fit lags up to 6 h",
            "lag_hours": None,
            "effect_size": None,
            "sign": None,
            "p_value": None,
            "n": 0,
            "ccf_lag_hours": None,
            "ccf": None,
        },
    ],
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
    "CausalEvidence": [
        _missing(EVIDENCE, "method_version"),
        _wrong("unknown-status", EVIDENCE, "$.status", "is not one of", status="proof"),
        _wrong("p-value-above-one", EVIDENCE, "$.p_value", "", p_value=1.5),
        _wrong("lag-zero", EVIDENCE, "$.lag_hours", "", lag_hours=0),
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
