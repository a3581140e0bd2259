"""Counters and per-producer state are keyed by the registry's producers, never by what a
payload claims (issue 18, item 7): a flood of invented producer ids cannot grow the worker's
memory, the totals still balance, and registered producers are still counted one by one, up
to the worker's /counters and the operators' page."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from operators_view.producer_rates import CounterSample, validation_rates
from reference.loader import Device, load_reference
from schemas.batch_envelope import CONTENT_TYPE_HEADER, FRAMES_CONTENT_TYPE, encode_frames
from schemas.dead_letter import DeadLetter, FieldProblem, Origin
from schemas.dead_letters import dead_letter
from streams.indicators.producer_activity import UNREGISTERED as ACTIVITY_UNREGISTERED
from streams.indicators.producer_activity import ProducerActivity
from streams.validation.deduplication import RecentEventIds
from streams.validation.engine import ValidationEngine
from streams.validation.raw_records import RawRecord
from streams.validation.stage import (
    OVERFLOW,
    UNKNOWN,
    UNREGISTERED,
    ValidationCounters,
    registered_producers,
)
from tests.energy_readings import energy_reading, meter_topic

REF = load_reference()
NOW = datetime.now(UTC)
ORIGIN = Origin(transport="kafka", topic="zc.raw.energy", partition=0, offset=1, key=None, index=None)
OUTCOMES = ("accepted", "duplicates", "dead_lettered")


def _letter(producer_id: str | None) -> DeadLetter:
    raw = json.dumps({"producer_id": producer_id} if producer_id else {"x": 1}).encode()
    problem = FieldProblem(path="", type="missing", message="not a reading")
    return dead_letter(
        family="energy", stage="validation", raw=raw, problems=[problem], origin=ORIGIN, now=NOW
    )


def _keys(counters: ValidationCounters) -> int:
    return sum(len(getattr(counters, outcome)) for outcome in (*OUTCOMES, "reasons"))


def _engine(counters: ValidationCounters) -> ValidationEngine:
    return ValidationEngine(REF, RecentEventIds(horizon=3600), counters, 4, clock=lambda: NOW)


def _frames(offset: int, payloads: list[bytes]) -> RawRecord:
    value = encode_frames([(meter_topic(payload), payload) for payload in payloads])
    return RawRecord("zc.raw.energy", 0, offset, None, value, [(CONTENT_TYPE_HEADER, FRAMES_CONTENT_TYPE)])


def test_a_million_invented_producer_ids_keep_the_counters_small_and_balanced() -> None:
    counters = ValidationCounters(registered=registered_producers(REF))
    template = _letter("someone")
    for k in range(1_000_000):
        counters.count(template.model_copy(update={"producer_id": f"invented-{k}"}))
    assert counters.received == 1_000_000 and counters.balanced()
    assert counters.dead_lettered == {UNREGISTERED: 1_000_000}
    assert _keys(counters) == 2  # `unregistered` and the one reason


def test_invented_ids_through_the_engine_count_under_the_registry_and_the_letters_keep_them() -> None:
    counters = ValidationCounters()
    engine = _engine(counters)
    readings, letters = [], []
    for k in range(3000):
        claimed = f"invented-{k}"
        # Accepted: a registered meter, whatever producer the payload claims.
        readings.append(json.dumps(energy_reading(claimed, f"ok-{k}", NOW)).encode())
        # Rejected: the producer id is read from the raw bytes.
        readings.append(json.dumps(energy_reading(claimed, f"bad-{k}", NOW, quantity=-1)).encode())
    for offset, start in enumerate(range(0, len(readings), 100)):
        routed = engine.apply(_frames(offset, readings[start : start + 100]))
        letters += [json.loads(outgoing.value) for outgoing in routed.dead]
        engine.count(routed)
    assert counters.received == 6000 and counters.balanced()
    assert counters.accepted == {"enedis": 3000}  # elec-17300-0001's producer in the registry
    assert counters.dead_lettered == {UNREGISTERED: 3000}
    assert len(letters) == 3000 and letters[7]["producer_id"] == "invented-7"  # evidence, kept


def test_registered_producers_are_still_counted_one_by_one() -> None:
    counters = ValidationCounters()
    engine = _engine(counters)
    payloads = [
        json.dumps(energy_reading("enedis", "e1", NOW)).encode(),
        json.dumps(energy_reading("grdf", "g1", NOW, meter_id="gas-17028-0001", commune="17028")).encode(),
        json.dumps(energy_reading("grdf", "g1", NOW, meter_id="gas-17028-0001", commune="17028")).encode(),
        json.dumps(energy_reading("grdf", "g2", NOW, quantity=-1)).encode(),  # claims a registered producer
        b'{"event_id": "no producer"}',
    ]
    engine.count(engine.apply(_frames(1, payloads)))
    assert counters.accepted == {"enedis": 1, "grdf": 1}
    assert counters.duplicates == {"grdf": 1}
    assert counters.dead_lettered == {"grdf": 1, UNKNOWN: 1}
    assert counters.balanced()


def test_a_producer_added_to_the_registry_is_counted_under_its_name_from_the_next_record() -> None:
    counters = ValidationCounters()
    engine = _engine(counters)
    letter = json.dumps(energy_reading("newcomer", "n1", NOW, quantity=-1)).encode()
    engine.count(engine.apply(_frames(1, [letter])))
    newcomer = Device("elec-17300-0999", "energy", "electricity_meter", "17300", "residential", "newcomer")
    engine.reference = replace(REF, devices={**REF.devices, newcomer.device_id: newcomer})
    engine.count(engine.apply(_frames(2, [letter.replace(b'"n1"', b'"n2"')])))
    assert counters.dead_lettered == {UNREGISTERED: 1, "newcomer": 1}


def test_the_hard_bound_counts_what_overflows_and_the_totals_still_balance() -> None:
    many = frozenset(f"producer-{k}" for k in range(5000))  # a registry larger than the bound
    counters = ValidationCounters(registered=many, max_keys=100)
    for name in sorted(many):
        counters.count(_letter(name))
    assert len(counters.dead_lettered) == 101  # 100 producers, and `overflow`
    assert counters.dead_lettered[OVERFLOW] == 4900
    assert counters.received == 5000 and counters.balanced()


def test_the_workers_counters_and_the_operators_page_show_registered_producers() -> None:
    counters = ValidationCounters()
    engine = _engine(counters)
    payloads = [json.dumps(energy_reading(f"invented-{k}", f"e{k}", NOW)).encode() for k in range(50)]
    payloads += [
        json.dumps(energy_reading(f"invented-{k}", f"b{k}", NOW, quantity=-1)).encode() for k in range(50)
    ]
    engine.count(engine.apply(_frames(1, payloads)))
    snapshot: dict[str, Any] = counters.snapshot() | {"balanced": counters.balanced()}  # /counters
    rates = validation_rates(None, CounterSample(0.0, snapshot))
    rows = {row.producer: (row.accepted, row.dead_lettered) for row in rates.producers}
    assert rows == {"enedis": (50, 0), UNREGISTERED: (0, 50)}
    assert rates.balanced is True


H = int(datetime(2026, 3, 2, 10, tzinfo=UTC).timestamp())


class _Event:
    """What producer activity reads of a validated event."""

    def __init__(self, producer_id: str, device_id: str, commune: str, at: int) -> None:
        self.producer_id, self.meter_id, self.commune = producer_id, device_id, commune
        self.event_time = datetime.fromtimestamp(at, UTC)


def test_producer_activity_keys_by_the_devices_registry_row_not_the_claimed_producer() -> None:
    activity = ProducerActivity(grace_seconds=300)
    events = [_Event(f"invented-{k}", "elec-17300-0001", "17300", H + k) for k in range(20_000)]
    activity.add_events(events, "meter_id", REF.devices, REF.communes)
    assert set(activity.last_event) == {("enedis", "17300")}
    assert {key[:2] for key in activity.hours} == {("enedis", "17300")}
    assert activity.hours[("enedis", "17300", H)] == {"elec-17300-0001"}


def test_producer_activity_holds_one_bounded_source_for_devices_the_registry_does_not_list() -> None:
    activity = ProducerActivity(grace_seconds=300)
    events = [
        _Event(f"invented-{k}", f"device-{k}", "17300" if k % 2 else f"c{k}", H + k) for k in range(20_000)
    ]
    activity.add_events(events, "meter_id", REF.devices, REF.communes)
    unregistered = ACTIVITY_UNREGISTERED
    assert set(activity.last_event) == {(unregistered, "17300"), (unregistered, unregistered)}
    assert activity.hours == {}  # no completeness for them: their devices are not remembered
    updates = activity.flush({})
    assert len(updates) == 2 and all(u.total == H + 19_999 or u.total == H + 19_998 for u in updates)


def test_the_bounded_activity_survives_a_checkpoint() -> None:
    activity = ProducerActivity(grace_seconds=300)
    events = [_Event("x", "elec-17300-0001", "17300", H), _Event("y", "nobody", "17300", H + 1)]
    activity.add_events(events, "meter_id", REF.devices, REF.communes)
    restored = ProducerActivity.from_doc(activity.to_doc(), 300)
    assert restored.last_event == {("enedis", "17300"): H, (ACTIVITY_UNREGISTERED, "17300"): H + 1}
    assert restored.hours == activity.hours == {("enedis", "17300", H): {"elec-17300-0001"}}
