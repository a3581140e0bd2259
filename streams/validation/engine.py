"""The validation engine: one raw record in, the records it becomes out, every reading counted.

Counted invariant: every reading of every raw record comes out in exactly one place, accepted
in its family's valid array, dropped as a duplicate, or dead-lettered with every reason, and
``ValidationCounters`` says so (received = accepted + duplicates + dead_lettered) once the
shell has called ``count`` for what it sent, under the registry's producers, never under an
id read from a payload the registry does not name (so a flood of invented ids cannot grow
the worker's memory). Errors are data: whatever raises for one reading
makes it a dead letter with the reason ``internal_error``; whatever raises for the record as a
whole (a bug of ours, a record the producer refuses) makes the record one such dead letter,
verbatim, counted as one reading. Nothing escapes, because faust would skip the message.

One raw record (a batch from the bridge, a partner's array or a single event) gives one
valid record per commune partition it holds (one, when the producer keyed it by commune as
documented), a JSON array of the accepted events, so a device's readings stay in order, a
commune's readings meet on one partition (schemas/partition_key.py), and faust's
per-message cost is paid once per batch.

No I/O and no faust: the agent (agent.py), bench/validation_throughput.py and the tests
all drive this class.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from pydantic import BaseModel, TypeAdapter

from reference.loader import ReferenceData, ReferenceStore
from schemas.catalogue import DEAD_LETTER_TOPIC, raw_topic, valid_topic
from schemas.dead_letter import DeadLetter, FieldProblem
from schemas.dead_letters import dead_letter, fitting_json
from schemas.energy import EnergyReading
from schemas.environment import EnvironmentReading
from schemas.families import FAMILIES, Family
from schemas.mobility import MobilityEvent
from schemas.partition_key import commune_partition
from streams.validation.deduplication import RecentEventIds
from streams.validation.raw_records import RawRecord, Unpacked, record_origin, unpack
from streams.validation.stage import (
    STAGE,
    Accepted,
    Outcome,
    ValidationCounters,
    check_payload,
    registered_producers,
    reject,
)

log = logging.getLogger(__name__)

# Stamped on every valid record: on each valid partition, the offsets coming from one raw
# partition grow monotonically, so downstream skips a record it has already counted (a
# replay after a crash).
SOURCE_OFFSET_HEADER = "zc-source-offset"
SOURCE_PARTITION_HEADER = "zc-source-partition"

VALID_ARRAY: dict[str, TypeAdapter[Any]] = {
    "energy": TypeAdapter(list[EnergyReading]),
    "environment": TypeAdapter(list[EnvironmentReading]),
    "mobility": TypeAdapter(list[MobilityEvent]),
}
"""The value of a valid topic's record: a JSON array of one family's accepted events."""


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One record to send; ``partition`` None leaves it to the producer's partitioner."""

    topic: str
    partition: int | None
    key: bytes
    value: bytes
    headers: dict[str, bytes] | None


@dataclass(frozen=True, slots=True)
class Routed:
    """What one raw record becomes: valid records, dead letters, and the outcome of each of its
    readings, to count once they are sent."""

    valid: list[Outgoing]
    dead: list[Outgoing]
    outcomes: list[Outcome]

    @property
    def records(self) -> list[Outgoing]:
        """Everything to send, valid records first."""
        return self.valid + self.dead


def by_commune_partition(events: list[BaseModel], partitions: int) -> dict[int, list[BaseModel]]:
    """Accepted events grouped by the partition of their commune, in arrival order."""
    groups: dict[int, list[BaseModel]] = {}
    for event in events:
        commune: str = event.commune  # type: ignore[attr-defined]
        groups.setdefault(_partition_of(commune, partitions), []).append(event)
    return groups


# Hashing a commune cost about a tenth of an accepted event's whole path; an accepted event's
# commune is one of the territory's, so the cache stays small.
@lru_cache(maxsize=1024)
def _partition_of(commune: str, partitions: int) -> int:
    return commune_partition(commune, partitions)


def _utc_now() -> datetime:
    return datetime.now(UTC)


class ValidationEngine:
    """Validates raw records one at a time, in arrival order; remembers recent event ids and
    counts every reading. ``reference`` is a store (reloaded as it changes) or fixed data."""

    def __init__(
        self,
        reference: ReferenceStore | ReferenceData,
        recent: RecentEventIds,
        counters: ValidationCounters,
        partitions: int,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self.reference = reference
        self.recent = recent
        self.counters = counters
        self.partitions = partitions
        self.clock = clock
        self._families = {raw_topic(name): family for name, family in FAMILIES.items()}
        self._counted_with: ReferenceData | None = None
        self._current_reference()

    def _current_reference(self) -> ReferenceData:
        """The reference data now; the counters learn the registry's producers of each version."""
        reference = self.reference
        ref = reference.current() if isinstance(reference, ReferenceStore) else reference
        if ref is not self._counted_with:
            self._counted_with = ref
            self.counters.registered = registered_producers(ref)
        return ref

    def apply(self, record: RawRecord) -> Routed:
        """What ``record`` becomes (counted by ``count``); never raises."""
        try:
            family = self._families.get(record.topic)
            if family is None:
                raise LookupError(f"no event family is published on {record.topic!r}")
            ref = self._current_reference()
            now, now_monotonic = self.clock(), time.monotonic()
            outcomes = [self._validate(family, item, ref, now, now_monotonic) for item in unpack(record)]
            return self._route(family, record, outcomes)
        except Exception as exc:
            return self.reject_whole(record, exc)

    def reject_whole(self, record: RawRecord, exc: Exception) -> Routed:
        """The whole record as one ``internal_error`` dead letter naming ``exc``: a bug of ours
        (or a record the producer refuses) still leaves it somewhere visible, verbatim, counted
        once."""
        log.error(
            "raw record %s[%d]@%d dead-lettered whole: %s: %s",
            record.topic, record.partition, record.offset, type(exc).__name__, exc, exc_info=exc,
        )  # fmt: skip
        family = self._families.get(record.topic)
        name = family.name if family is not None else record.topic
        problem = FieldProblem(
            path="",
            type="internal_error",
            message=f"{type(exc).__name__} while handling the raw record: {exc}"[:1000],
        )
        letter = dead_letter(
            family=name,
            stage=STAGE,
            raw=record.value,
            problems=[problem],
            origin=record_origin(record),
            now=self.clock(),
        )
        return Routed([], [_dead_record(name, letter)], [letter])

    def count(self, routed: Routed) -> None:
        """Count the readings of ``routed``, once it is sent (or given up on)."""
        count = self.counters.count
        for outcome in routed.outcomes:
            count(outcome)

    def _validate(
        self, family: Family, item: Unpacked, ref: ReferenceData, now: datetime, now_monotonic: float
    ) -> Outcome:
        try:
            if item.problem is not None:
                problem = FieldProblem(path="", type="malformed_batch", message=item.problem)
                return reject(family, item.payload, [problem], item.origin, now)
            checked = check_payload(
                family, item.payload, ref, now, self.recent, now_monotonic, item.mqtt_topic
            )
            if isinstance(checked, list):
                return reject(family, item.payload, checked, item.origin, now)
            return checked
        except Exception as exc:  # a bug of ours must still leave the reading somewhere
            log.exception("validation failed unexpectedly at %s", item.origin)
            problem = FieldProblem(path="", type="internal_error", message=repr(exc))
            return reject(family, item.payload, [problem], item.origin, now)

    def _route(self, family: Family, record: RawRecord, outcomes: list[Outcome]) -> Routed:
        accepted = [outcome.event for outcome in outcomes if isinstance(outcome, Accepted)]
        valid: list[Outgoing] = []
        if accepted:
            topic, array = valid_topic(family.name), VALID_ARRAY[family.name]
            source = {
                SOURCE_OFFSET_HEADER: str(record.offset).encode(),
                SOURCE_PARTITION_HEADER: str(record.partition).encode(),
            }
            for partition, events in by_commune_partition(accepted, self.partitions).items():
                commune: str = events[0].commune  # type: ignore[attr-defined]
                value = array.dump_json(events, by_alias=True)
                valid.append(Outgoing(topic, partition, commune.encode(), value, source))
        dead = [_dead_record(family.name, outcome) for outcome in outcomes if isinstance(outcome, DeadLetter)]
        return Routed(valid, dead, outcomes)


def _dead_record(family: str, letter: DeadLetter) -> Outgoing:
    return Outgoing(DEAD_LETTER_TOPIC, None, family.encode(), fitting_json(letter), None)
