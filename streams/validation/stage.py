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


@dataclass(slots=True)
class Accepted:
    event: BaseModel


@dataclass(slots=True)
class Duplicate:
    producer_id: str
    event_id: str


Outcome = Accepted | Duplicate | DeadLetter


@dataclass
class ValidationCounters:
    """received = accepted + dead_lettered + duplicates, per producer and per reason."""

    received: int = 0
    accepted: Counter[str] = field(default_factory=Counter)
    duplicates: Counter[str] = field(default_factory=Counter)
    dead_lettered: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)

    def count(self, outcome: Outcome) -> None:
        self.received += 1
        if isinstance(outcome, Accepted):
            self.accepted[str(getattr(outcome.event, "producer_id", "?"))] += 1
        elif isinstance(outcome, Duplicate):
            self.duplicates[outcome.producer_id] += 1
        else:
            self.dead_lettered[outcome.producer_id or "unknown"] += 1
            self.reasons[outcome.errors[0].type] += 1

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
) -> Accepted | Duplicate | list[FieldProblem]:
    """Check one raw payload of ``family``: accepted (stamped), duplicate, or its problems.

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
    problems = rules.problems(event, family.name, family.device_field, now)
    if problems:
        return problems
    data = event.__dict__
    if recent is not None and recent.seen_before(data["producer_id"], data["event_id"], now_monotonic):
        return Duplicate(data["producer_id"], data["event_id"])
    # Stamp in place: the event was created just above and nobody else holds it yet, and a
    # model_copy would cost a quarter of the whole validation (measured by bench/validation_throughput.py).
    data["ingestion_time"] = now
    return Accepted(event)


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
    checked = check_payload(family, raw, ref, now, recent, now_monotonic)
    if isinstance(checked, list):
        return reject(family, raw, checked, origin, now)
    return checked
