"""A reading that came over MQTT must be the reading of the device whose topic it came on.

The broker lets a device publish on its own topic only (docs/security.md), so the topic is the
authenticated identity; a payload naming another device, commune or family would let one
device write another's figures. Validation dead-letters it with ``plausibility.topic_mismatch``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from reference.loader import load_reference
from schemas.batch_envelope import CONTENT_TYPE_HEADER, FRAMES_CONTENT_TYPE, encode_frames
from schemas.dead_letter import DeadLetter, Origin
from schemas.device_topics import device_topic
from schemas.families import FAMILIES
from streams.validation.deduplication import RecentEventIds
from streams.validation.engine import ValidationEngine
from streams.validation.raw_records import RawRecord
from streams.validation.stage import Accepted, ValidationCounters, validate_payload

REF = load_reference()
NOW = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)
# Two meters of the same family and commune, both registered: only the topic tells them apart.
OWN = "elec-17300-0001"
NEIGHBOUR = "elec-17300-0002"


def _reading(meter: str = OWN, **changes: Any) -> bytes:
    """A valid reading of ``meter`` (its registered sector): only its topic can be wrong."""
    event = {
        "event_id": f"claim-{meter}-1", "producer_id": "enedis", "event_time": "2026-12-01T11:45:00Z",
        "meter_id": meter, "commune": "17300", "sector": REF.devices[meter].sector, "carrier": "electricity",
        "quantity": 1.2, "unit": "kWh", "kind": "interval", "interval_start": "2026-12-01T11:30:00Z",
    }  # fmt: skip
    return json.dumps(event | changes).encode()


def _over_mqtt(topic: str, raw: bytes) -> Accepted | DeadLetter:
    outcome = validate_payload(FAMILIES["energy"], raw, Origin(transport="mqtt", topic=topic), REF, NOW)
    assert not isinstance(outcome, tuple)
    return outcome  # type: ignore[return-value]


def _mismatches(outcome: object) -> list[tuple[str, str]]:
    assert isinstance(outcome, DeadLetter), outcome
    return [(p.path, p.type) for p in outcome.errors]


def test_a_reading_on_its_own_devices_topic_is_accepted() -> None:
    assert isinstance(_over_mqtt(device_topic("17300", "energy", OWN), _reading()), Accepted)


def test_a_reading_naming_another_registered_device_is_refused() -> None:
    outcome = _over_mqtt(device_topic("17300", "energy", OWN), _reading(NEIGHBOUR))
    assert _mismatches(outcome) == [("meter_id", "plausibility.topic_mismatch")]
    assert isinstance(outcome, DeadLetter)
    assert NEIGHBOUR in outcome.errors[0].message and OWN in outcome.errors[0].message


def test_a_reading_claiming_another_commune_or_family_than_its_topic_is_refused() -> None:
    # The meter of 17300 publishing as if from 17000: the registry check says so too, the topic first.
    other_commune = _over_mqtt(device_topic("17000", "energy", OWN), _reading())
    assert ("commune", "plausibility.topic_mismatch") in _mismatches(other_commune)
    other_family = _over_mqtt(device_topic("17300", "environment", OWN), _reading())
    assert _mismatches(other_family) == [("", "plausibility.topic_mismatch")]


def test_a_topic_outside_the_device_tree_claims_nothing() -> None:
    """A partner's own frames may carry any source label: the registry checks still apply."""
    assert isinstance(_over_mqtt("partner/batch-7", _reading()), Accepted)


def test_kafka_readings_are_not_held_to_a_topic() -> None:
    origin = Origin(transport="kafka", topic="zc.raw.energy", partition=0, offset=1)
    assert isinstance(validate_payload(FAMILIES["energy"], _reading(NEIGHBOUR), origin, REF, NOW), Accepted)


def test_the_engine_dead_letters_a_framed_reading_whose_payload_is_not_its_topics() -> None:
    """The path the worker runs: the bridge's record, one honest reading and one impostor."""
    counters = ValidationCounters()
    engine = ValidationEngine(REF, RecentEventIds(horizon=60), counters, 4, clock=lambda: NOW)
    own_topic = device_topic("17300", "energy", OWN)
    frames = [(own_topic, _reading(event_id="honest")), (own_topic, _reading(NEIGHBOUR, event_id="impostor"))]
    record = RawRecord(
        "zc.raw.energy", 0, 7, None, encode_frames(frames), [(CONTENT_TYPE_HEADER, FRAMES_CONTENT_TYPE)]
    )
    routed = engine.apply(record)
    engine.count(routed)
    assert [json.loads(o.value)[0]["event_id"] for o in routed.valid] == ["honest"]
    (dead,) = routed.dead
    letter = json.loads(dead.value)
    assert letter["errors"][0]["type"] == "plausibility.topic_mismatch"
    assert letter["origin"]["topic"] == own_topic
    counted = counters.snapshot()
    assert counted["received"] == 2
    assert sum(counted["accepted"].values()) == 1 and sum(counted["dead_lettered"].values()) == 1
