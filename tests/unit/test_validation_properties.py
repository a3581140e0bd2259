"""Properties of the validation stage over generated payloads of every family.

Valid payloads are built from the reference data (registered devices, their commune and
sector, the plausibility bounds) around a fixed platform clock, so each one must be
accepted and survive a JSON round trip; one mutation of a valid payload must give a dead
letter that names the mutated field and keeps the original bytes; and whatever the mix,
the counters must balance.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, get_args

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from reference.loader import Device, load_reference
from schemas.dead_letter import DeadLetter, Origin
from schemas.environment import UNIT_OF, EnvQuantity
from schemas.families import FAMILIES
from schemas.mobility import MobilityEvent
from schemas.territory import Carrier
from schemas.units import ENERGY_TO_KWH, UNITS_FOR_CARRIER
from streams.validation.deduplication import RecentEventIds
from streams.validation.stage import Accepted, Duplicate, ValidationCounters, validate_payload

REF = load_reference()
NOW = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)
ORIGIN = Origin(transport="kafka", topic="zc.raw.test", partition=0, offset=0)
BOUNDS = REF.bounds


def budget(examples: int) -> settings:
    """Moderate example counts keep this file to a few seconds on a 2-core machine."""
    return settings(max_examples=examples, deadline=None, suppress_health_check=[HealthCheck.too_slow])


Payload = dict[str, Any]


@dataclass(frozen=True)
class Generated:
    """A valid payload, the family it is published as, and what a mutation may touch."""

    family: str
    payload: Payload
    kind: str  # energy: interval/index; environment: the quantity; mobility: the event kind
    required: tuple[str, ...]  # fields whose absence the contract refuses
    numeric: tuple[str, ...]  # fields whose negative value the contract refuses
    absurd: dict[str, tuple[Any, ...]]  # field -> values no device of that kind can report


def devices_of(family: str, *types: str) -> list[Device]:
    found = [d for d in REF.devices.values() if d.family == family and (not types or d.device_type in types)]
    assert found, f"the registry has no {family} device of type {types}"
    return found


ENVELOPE_REQUIRED = ("event_id", "producer_id", "event_time", "commune")

# ---------------------------------------------------------------------------------------
# Times


offsets = st.integers(min_value=-14 * 60, max_value=14 * 60).map(lambda m: timezone(timedelta(minutes=m)))


def stamp(moment: datetime, tz: timezone) -> str:
    """ISO 8601 with the producer's own offset (the platform normalises it to UTC)."""
    return moment.astimezone(tz).isoformat()


# Inside the clock window, with one second of margin on both sides.
window_us = st.integers(
    min_value=-(int(BOUNDS.time.max_past_days * 86400) - 1) * 10**6,
    max_value=(int(BOUNDS.time.max_future_seconds) - 1) * 10**6,
)
event_times = window_us.map(lambda us: NOW + timedelta(microseconds=us))
durations = st.integers(min_value=1, max_value=31 * 86400 * 10**6).map(lambda us: timedelta(microseconds=us))
event_ids = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.:\-]{0,40}", fullmatch=True)


@st.composite
def envelopes(draw: st.DrawFn, device: Device, device_field: str) -> tuple[Payload, datetime]:
    moment = draw(event_times)
    payload: Payload = {
        "event_id": draw(event_ids),
        "producer_id": device.producer_id,
        "event_time": stamp(moment, draw(offsets)),
        device_field: device.device_id,
        "commune": device.commune,
    }
    if draw(st.booleans()):
        payload["schema_version"] = draw(st.integers(min_value=1, max_value=3))
    return payload, moment


def finite(low: float, high: float) -> st.SearchStrategy[float]:
    return st.floats(min_value=low, max_value=high, allow_nan=False, allow_infinity=False)


# ---------------------------------------------------------------------------------------
# Energy


@st.composite
def energy_payloads(draw: st.DrawFn) -> Generated:
    device = draw(st.sampled_from(devices_of("energy")))
    payload, moment = draw(envelopes(device, "meter_id"))
    carrier = draw(st.sampled_from(list(Carrier)))
    unit = draw(st.sampled_from(sorted(UNITS_FOR_CARRIER[carrier.value])))
    sector = device.sector or "residential"
    kind = draw(st.sampled_from(["interval", "index"]))
    if kind == "interval":
        length = draw(durations)
        hours = length.total_seconds() / 3600
        limit = BOUNDS.energy.power_limit_kw(carrier.value, sector)
        # 1 % under the bound, so that unit conversion rounding cannot cross it.
        kwh = draw(finite(0.0, 0.99)) * limit * hours
        payload["interval_start"] = stamp(moment - length, draw(offsets))
    else:
        kwh = draw(finite(0.0, 0.99 * BOUNDS.energy.max_index_kwh))
        if draw(st.booleans()):
            payload["interval_start"] = None
    payload |= {
        "sector": sector,
        "carrier": carrier.value,
        "quantity": kwh / ENERGY_TO_KWH[unit].to_kwh,
        "unit": unit.value,
        "kind": kind,
    }
    if draw(st.booleans()):
        payload["schema"] = "energy.reading"
    required: tuple[str, ...] = (
        *ENVELOPE_REQUIRED,
        *("meter_id", "sector", "carrier", "quantity", "unit", "kind"),
    )
    if kind == "interval":
        required += ("interval_start",)
    return Generated("energy", payload, kind, required, ("quantity",), {"quantity": (1e18,)})


# ---------------------------------------------------------------------------------------
# Environment


@st.composite
def environment_payloads(draw: st.DrawFn) -> Generated:
    device = draw(st.sampled_from(devices_of("environment")))
    payload, _ = draw(envelopes(device, "sensor_id"))
    quantity = draw(st.sampled_from(list(EnvQuantity)))
    low, high = BOUNDS.environment.range[quantity.value]
    payload |= {"quantity": quantity.value, "value": draw(finite(low, high)), "unit": UNIT_OF[quantity]}
    if draw(st.booleans()):
        payload["location"] = {"lat": draw(finite(46.0, 46.3)), "lon": draw(finite(-1.3, -0.9))}
    if draw(st.booleans()):
        payload["schema"] = "environment.reading"
    required = (*ENVELOPE_REQUIRED, "sensor_id", "quantity", "value", "unit")
    # Temperatures may be negative: a value is refused below its quantity's range, not below 0.
    return Generated("environment", payload, quantity.value, required, (), {"value": (1e9, -1e9)})


# ---------------------------------------------------------------------------------------
# Mobility: one builder per kind, each with its own device type


M = BOUNDS.mobility
counts = st.integers(min_value=0, max_value=10_000)
passengers = st.integers(min_value=0, max_value=M.max_passengers_per_event)
lines = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_\-]{0,8}", fullmatch=True)


def _trip(draw: st.DrawFn, payload: Payload, moment: datetime, max_km: float) -> None:
    payload["started_at"] = stamp(moment - draw(durations), draw(offsets))
    payload["distance_km"] = draw(finite(0.0, max_km))


def _interval(draw: st.DrawFn, payload: Payload, moment: datetime) -> None:
    payload["interval_start"] = stamp(moment - draw(durations), draw(offsets))


@dataclass(frozen=True)
class MobilityKind:
    device_types: tuple[str, ...]
    required: tuple[str, ...]
    numeric: tuple[str, ...]
    absurd: dict[str, Any]  # field -> a value no device of that kind can report


MOBILITY_KINDS: dict[str, MobilityKind] = {
    "bike_trip": MobilityKind(
        ("bike_station",), ("started_at", "distance_km"), ("distance_km",), {"distance_km": 1e6}
    ),
    "bike_station_status": MobilityKind(
        ("bike_station",),
        ("available_bike_number", "free_slot_number", "total_slot_number"),
        ("available_bike_number", "free_slot_number", "total_slot_number"),
        {},  # only the sum is bounded, and the error then names total_slot_number
    ),
    "transit_validation": MobilityKind(
        ("bus", "sea_bus"),
        ("mode", "line", "passengers", "interval_start"),
        ("passengers",),
        {"passengers": 10**9},
    ),
    "transit_trip": MobilityKind(
        ("bus", "sea_bus"),
        ("started_at", "distance_km", "mode", "line", "passengers"),
        ("distance_km", "passengers"),
        {"distance_km": 1e6, "passengers": 10**9},
    ),
    "traffic_count": MobilityKind(
        ("traffic_counter",), ("interval_start", "intensity"), ("intensity",), {"average_vehicle_speed": 1e4}
    ),
    "parking_occupancy": MobilityKind(
        ("car_park",),
        ("occupied_spot_number", "total_spot_number"),
        ("occupied_spot_number", "total_spot_number"),
        {"occupied_spot_number": 10**9},
    ),
    "ev_charging_session": MobilityKind(
        ("charging_point",), ("started_at", "energy_kwh"), ("energy_kwh",), {"energy_kwh": 1e6}
    ),
    "carsharing_trip": MobilityKind(
        ("carsharing_car",), ("started_at", "distance_km"), ("distance_km",), {"distance_km": 1e6}
    ),
}


@st.composite
def mobility_payloads(draw: st.DrawFn, kind: str | None = None) -> Generated:
    kind = kind or draw(st.sampled_from(sorted(MOBILITY_KINDS)))
    spec = MOBILITY_KINDS[kind]
    device = draw(st.sampled_from(devices_of("mobility", *spec.device_types)))
    payload, moment = draw(envelopes(device, "device_id"))
    payload["kind"] = kind
    numeric = spec.numeric
    if kind in ("bike_trip", "carsharing_trip"):
        _trip(draw, payload, moment, M.max_bike_trip_km if kind == "bike_trip" else M.max_trip_km)
        if draw(st.booleans()):
            payload["electric"] = draw(st.booleans())
    elif kind == "bike_station_status":
        total = draw(st.integers(min_value=1, max_value=200))
        available = draw(st.integers(min_value=0, max_value=total))
        payload |= {
            "available_bike_number": available,
            "free_slot_number": draw(st.integers(min_value=0, max_value=total - available)),
            "total_slot_number": total,
        }
    elif kind in ("transit_validation", "transit_trip"):
        payload |= {"mode": device.device_type, "line": draw(lines), "passengers": draw(passengers)}
        if kind == "transit_validation":
            _interval(draw, payload, moment)
        else:
            _trip(draw, payload, moment, M.max_trip_km)
            if draw(st.booleans()):
                payload["energy_kwh"] = draw(finite(0.0, 1000.0))
                numeric += ("energy_kwh",)
    elif kind == "traffic_count":
        _interval(draw, payload, moment)
        payload["intensity"] = draw(counts)
        if draw(st.booleans()):
            payload["average_vehicle_speed"] = draw(finite(0.0, 300.0))
            numeric += ("average_vehicle_speed",)
        if draw(st.booleans()):
            payload["lane_id"] = draw(st.integers(min_value=0, max_value=8))
    elif kind == "parking_occupancy":
        total = draw(st.integers(min_value=1, max_value=5000))
        payload |= {"occupied_spot_number": draw(st.integers(0, total)), "total_spot_number": total}
    else:  # ev_charging_session
        payload["started_at"] = stamp(moment - draw(durations), draw(offsets))
        payload["energy_kwh"] = draw(finite(0.0, M.max_charging_kwh))
    if draw(st.booleans()):
        payload["schema"] = "mobility.event"
    absurd = {f: (v,) for f, v in spec.absurd.items() if f in payload}
    required = (*ENVELOPE_REQUIRED, "device_id", *spec.required)
    return Generated("mobility", payload, kind, required, numeric, absurd)


valid_payloads = st.one_of(energy_payloads(), environment_payloads(), mobility_payloads())


def encode(payload: Payload) -> bytes:
    return json.dumps(payload).encode()


def validate(family: str, raw: bytes, **kwargs: Any) -> Accepted | Duplicate | DeadLetter:
    return validate_payload(FAMILIES[family], raw, ORIGIN, REF, NOW, **kwargs)


# ---------------------------------------------------------------------------------------
# 1. Valid payloads are accepted and round-trip


def assert_accepted_and_round_trips(generated: Generated) -> None:
    event(f"{generated.family}: {generated.kind}")
    outcome = validate(generated.family, encode(generated.payload))
    assert isinstance(outcome, Accepted), (generated.payload, outcome)
    accepted = outcome.event
    assert accepted.ingestion_time == NOW  # type: ignore[attr-defined]
    assert accepted.event_time.utcoffset() == timedelta(0)  # type: ignore[attr-defined]
    again = FAMILIES[generated.family].adapter.validate_json(accepted.model_dump_json(by_alias=True))
    assert type(again) is type(accepted)
    assert again == accepted


@budget(150)
@given(energy_payloads())
def test_every_valid_energy_reading_is_accepted_and_round_trips(generated: Generated) -> None:
    assert_accepted_and_round_trips(generated)


@budget(100)
@given(environment_payloads())
def test_every_valid_environment_reading_is_accepted_and_round_trips(generated: Generated) -> None:
    assert_accepted_and_round_trips(generated)


@budget(40)
@given(st.data())
def test_every_mobility_kind_is_accepted_and_round_trips(data: st.DataObject) -> None:
    for kind in sorted(MOBILITY_KINDS):
        assert_accepted_and_round_trips(data.draw(mobility_payloads(kind), label=kind))


def test_the_generated_payloads_cover_every_carrier_quantity_and_kind() -> None:
    """The strategies above must not silently lose a part of the contracts."""
    assert set(UNITS_FOR_CARRIER) == {c.value for c in Carrier}
    assert set(BOUNDS.environment.range) == {q.value for q in EnvQuantity} == {q.value for q in UNIT_OF}
    members = get_args(get_args(MobilityEvent)[0])
    assert {get_args(m.model_fields["kind"].annotation)[0] for m in members} == set(MOBILITY_KINDS)


# ---------------------------------------------------------------------------------------
# 2. One mutation gives a dead letter naming the field, with the original bytes


OUTSIDE_TERRITORY = [c for c in ("75056", "2A004", "17001", "33063", "79191") if c not in REF.communes]
WRONG_TYPES = st.sampled_from([[], [1, "x"], {}, {"unexpected": 1}])
GHOST_DEVICES = st.from_regex(r"ghost-[0-9]{5}-[0-9]{4}", fullmatch=True)


@dataclass(frozen=True)
class Mutation:
    name: str
    field: str
    payload: Payload


@st.composite
def mutations(draw: st.DrawFn, generated: Generated) -> Mutation:
    original = generated.payload
    device_field = FAMILIES[generated.family].device_field
    choices = ["drop", "wrong_type", "commune", "future", "naive", "unknown_device", "other_family"]
    if generated.numeric:
        choices.append("negative")
    if generated.absurd:
        choices.append("absurd")
    name = draw(st.sampled_from(choices))
    payload = dict(original)
    if name == "drop":
        field = draw(st.sampled_from(generated.required))
        del payload[field]
    elif name == "wrong_type":
        # The mobility discriminator is left out: see the strict xfail in test_validation_bad_inputs.
        fields = [f for f in original if not (generated.family == "mobility" and f == "kind")]
        field = draw(st.sampled_from(fields))
        payload[field] = draw(WRONG_TYPES)
    elif name == "negative":
        field = draw(st.sampled_from(generated.numeric))
        payload[field] = -draw(st.one_of(st.integers(1, 10**6), finite(1e-3, 1e6)))
    elif name == "absurd":
        field = draw(st.sampled_from(sorted(generated.absurd)))
        payload[field] = draw(st.sampled_from(generated.absurd[field]))
    elif name == "commune":
        field = "commune"
        payload[field] = draw(st.sampled_from(OUTSIDE_TERRITORY))
    elif name == "future":
        field = "event_time"
        ahead = draw(st.integers(int(BOUNDS.time.max_future_seconds) + 1, 10 * 365 * 86400))
        payload[field] = stamp(NOW + timedelta(seconds=ahead), draw(offsets))
    elif name == "naive":
        field = "event_time"
        moment = datetime.fromisoformat(original[field])
        payload[field] = moment.replace(tzinfo=None).isoformat()
    elif name == "unknown_device":
        field = device_field
        payload[field] = draw(GHOST_DEVICES.filter(lambda d: d not in REF.devices))
    else:  # other_family: a registered device, but of another family
        field = device_field
        others = [d.device_id for d in REF.devices.values() if d.family != generated.family]
        payload[field] = draw(st.sampled_from(others))
    return Mutation(name, field, payload)


def names_field(path: str, field: str) -> bool:
    """``quantity``, ``bike_trip.distance_km`` and ``location.lat`` all name their field."""
    return field in path.split(".")


@budget(400)
@given(st.data())
def test_one_mutation_gives_a_dead_letter_naming_the_field_with_the_original_bytes(
    data: st.DataObject,
) -> None:
    generated = data.draw(valid_payloads, label="valid")
    mutation = data.draw(mutations(generated), label="mutation")
    event(f"{generated.family}: {mutation.name}")
    raw = encode(mutation.payload)
    outcome = validate(generated.family, raw)
    assert isinstance(outcome, DeadLetter), (mutation, outcome)
    paths = [p.path for p in outcome.errors]
    assert any(names_field(p, mutation.field) for p in paths), (mutation, paths)
    assert outcome.original_payload() == raw
    assert outcome.payload_encoding == "utf-8"
    assert outcome.payload_size == len(raw)
    assert outcome.family == generated.family
    producer = mutation.payload.get("producer_id")
    assert outcome.producer_id == (producer if isinstance(producer, str) else None)
    assert outcome.reason


# ---------------------------------------------------------------------------------------
# 3. Counters balance and duplicates are exactly the resent valid events


@st.composite
def traffic(draw: st.DrawFn) -> list[tuple[str, bytes, str]]:
    """(family, raw, what) with what in {valid, invalid, resent-valid, resent-invalid}."""
    sent: list[tuple[str, bytes, str]] = []
    for index in range(draw(st.integers(min_value=1, max_value=25))):
        if sent and draw(st.integers(0, 3)) == 0:
            family, raw, what = draw(st.sampled_from(sent))
            sent.append((family, raw, "resent-" + what.removeprefix("resent-")))
            continue
        generated = draw(valid_payloads)
        # Distinct events have distinct ids, as the contract asks of producers.
        generated.payload["event_id"] = f"evt-{index}"
        if draw(st.booleans()):
            sent.append((generated.family, encode(generated.payload), "valid"))
        else:
            mutation = draw(mutations(generated))
            sent.append((generated.family, encode(mutation.payload), "invalid"))
    return sent


@budget(60)
@given(traffic())
def test_counters_balance_and_only_resent_valid_events_are_duplicates(
    sent: list[tuple[str, bytes, str]],
) -> None:
    recent = RecentEventIds(horizon=3600)
    counters = ValidationCounters()
    outcomes = []
    for clock, (family, raw, _) in enumerate(sent):
        outcome = validate(family, raw, recent=recent, now_monotonic=float(clock))
        counters.count(outcome)
        outcomes.append(outcome)
    what = [w for _, _, w in sent]
    assert counters.received == len(sent)
    assert counters.balanced()
    assert sum(counters.duplicates.values()) == what.count("resent-valid")
    assert sum(counters.accepted.values()) == what.count("valid")
    assert sum(counters.dead_lettered.values()) == what.count("invalid") + what.count("resent-invalid")
    assert sum(counters.reasons.values()) == sum(counters.dead_lettered.values())
    for outcome, w in zip(outcomes, what, strict=True):
        expected = {"valid": Accepted, "resent-valid": Duplicate}.get(w, DeadLetter)
        assert isinstance(outcome, expected), (w, outcome)
