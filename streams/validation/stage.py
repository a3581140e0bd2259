"""The validation rules as pure functions: raw bytes in, an accepted event, a duplicate or a
dead letter (every problem of the payload) out; and the counters that hold them to account.

A bad payload is a value here, never an exception; streams/validation/engine.py turns what
raises anyway (a bug of ours) into a dead letter too.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ValidationError

from reference.loader import ReferenceData
from schemas.dead_letter import DeadLetter, FieldProblem, Origin
from schemas.dead_letters import dead_letter, problems_from
from schemas.families import Family
from streams.validation.deduplication import RecentEventIds
from streams.validation.plausibility import rules_for

STAGE = "validation"

# The counters' keys besides the registry's producers (docs/security.md): a producer id the
# registry does not name, none at all, and whatever passes the hard bound on distinct keys.
UNREGISTERED = "unregistered"
UNKNOWN = "unknown"
OVERFLOW = "overflow"
MAX_COUNTER_KEYS = 1024
"""Distinct keys one counter map holds at most (plus ``overflow``): far more producers than a
territory's registry names, and a flood of invented ids cannot grow the worker's memory."""


@dataclass(slots=True)
class Accepted:
    """An accepted event; ``producer`` is its device's producer in the registry (what it is
    counted under), whatever producer id the payload claims."""

    event: BaseModel
    producer: str


@dataclass(slots=True)
class Duplicate:
    """A resent event: the payload's (producer id, event id) seen within the horizon;
    ``producer`` as for ``Accepted``."""

    producer_id: str
    event_id: str
    producer: str


Outcome = Accepted | Duplicate | DeadLetter


def registered_producers(ref: ReferenceData) -> frozenset[str]:
    """Every producer the device registry names."""
    return frozenset(device.producer_id for device in ref.devices.values())


@dataclass
class ValidationCounters:
    """received = accepted + dead_lettered + duplicates, per producer and per reason.

    Bounded by identity: accepted events and duplicates count under their device's producer in
    the registry; a dead letter under the producer id read from its payload only when the
    registry names that producer (``registered``), else under ``unregistered`` (``unknown``
    when none could be read). No map holds more than ``max_keys`` keys; beyond, readings count
    under ``overflow``, so the totals still balance. The dead letter itself keeps the id it read.
    """

    received: int = 0
    accepted: Counter[str] = field(default_factory=Counter)
    duplicates: Counter[str] = field(default_factory=Counter)
    dead_lettered: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)
    # The registry's producers, kept current by the engine.
    registered: frozenset[str] = field(default=frozenset(), repr=False)
    max_keys: int = MAX_COUNTER_KEYS

    def count(self, outcome: Outcome) -> None:
        self.received += 1
        if isinstance(outcome, Accepted):
            counts, key = self.accepted, outcome.producer
        elif isinstance(outcome, Duplicate):
            counts, key = self.duplicates, outcome.producer
        else:
            claimed = outcome.producer_id
            key = UNKNOWN if claimed is None else claimed if claimed in self.registered else UNREGISTERED
            counts = self.dead_lettered
            _bump(self.reasons, outcome.errors[0].type, self.max_keys)
        if key in counts:  # the common case: a producer already counted
            counts[key] += 1
        else:
            _bump(counts, key, self.max_keys)

    def balanced(self) -> bool:
        total = sum(self.accepted.values()) + sum(self.duplicates.values()) + sum(self.dead_lettered.values())
        return total == self.received

    def snapshot(self) -> dict[str, Any]:
        return {
            "received": self.received,
            "accepted": dict(self.accepted),
            "duplicates": dict(self.duplicates),
            "dead_lettered": dict(self.dead_lettered),
            "reasons": dict(self.reasons),
        }


def _bump(counts: Counter[str], key: str, max_keys: int) -> None:
    """Count one under ``key``, or under ``overflow`` when ``counts`` already holds ``max_keys``."""
    if key in counts or len(counts) < max_keys:
        counts[key] += 1
    else:
        counts[OVERFLOW] += 1


def plausibility(family: Family, event: BaseModel, ref: ReferenceData, now: datetime) -> list[FieldProblem]:
    """Every plausibility problem of a schema-valid event."""
    return rules_for(ref).problems(event, family.name, family.device_field, now)


def check_payload(
    family: Family,
    raw: bytes,
    ref: ReferenceData,
    now: datetime,
    recent: RecentEventIds | None = None,
    now_monotonic: float = 0.0,
    mqtt_topic: str | None = None,
) -> Accepted | Duplicate | list[FieldProblem]:
    """Check one raw payload of ``family``: accepted (stamped), duplicate, or its problems.
    ``mqtt_topic``: the device topic the bridge received it on, which the payload must match.

    This is the hot path (bench/validation_throughput.py): the happy path does no work that only
    a rejection needs, not even the payload's origin (the caller builds the dead letter).
    """
    rules = rules_for(ref)
    max_bytes = rules.max_payload_bytes
    if len(raw) > max_bytes:
        return [
            FieldProblem(path="", type="payload_too_large", message=f"{len(raw)} bytes exceeds {max_bytes}")
        ]
    try:
        event = family.validator.validate_json(raw)
    except ValidationError as exc:
        # pydantic reports bad UTF-8 as invalid JSON; say precisely what is wrong.
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as bad:
            message = f"payload is not UTF-8 JSON: {bad.reason} at byte {bad.start}"
            return [FieldProblem(path="", type="invalid_utf8", message=message)]
        return problems_from(exc)
    problems = rules.problems(event, family.name, family.device_field, now, mqtt_topic)
    if problems:
        return problems
    data = event.__dict__
    # Plausibility found the device in the registry: its row, not the payload, names the producer.
    device = ref.devices.get(data[family.device_field])
    producer = device.producer_id if device is not None else UNREGISTERED
    if recent is not None and recent.seen_before(data["producer_id"], data["event_id"], now_monotonic):
        return Duplicate(data["producer_id"], data["event_id"], producer)
    # Stamp in place: the event was created just above and nobody else holds it yet, and a
    # model_copy would cost a quarter of the whole validation (measured by bench/validation_throughput.py).
    data["ingestion_time"] = now
    return Accepted(event, producer)


def reject(
    family: Family, raw: bytes, problems: list[FieldProblem], origin: Origin, now: datetime
) -> DeadLetter:
    """The dead letter of ``raw`` at this stage."""
    return dead_letter(family=family.name, stage=STAGE, raw=raw, problems=problems, origin=origin, now=now)


def validate_payload(
    family: Family,
    raw: bytes,
    origin: Origin,
    ref: ReferenceData,
    now: datetime,
    recent: RecentEventIds | None = None,
    now_monotonic: float = 0.0,
) -> Outcome:
    """Validate one raw payload of ``family``: accepted (stamped), duplicate, or dead letter."""
    mqtt_topic = origin.topic if origin.transport == "mqtt" else None
    checked = check_payload(family, raw, ref, now, recent, now_monotonic, mqtt_topic)
    if isinstance(checked, list):
        return reject(family, raw, checked, origin, now)
    return checked
