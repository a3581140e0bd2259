"""The indicator engine of one source partition: valid records in, what to publish out.

Invariants, which the shell (agent.py) keeps by doing what each call returns, in order:

1. The committed offset never passes a delivered checkpoint. ``apply`` keeps a record's
   token; only the flush whose checkpoint covers the record hands it back, to acknowledge
   once Kafka has that checkpoint. A record the restored checkpoint already includes is
   acknowledged at once.
2. Everything derived from a record, its indicator updates and its dead letters (an
   unreadable record, ``no_emission_factor``, ``index_*``), is in Kafka before the
   checkpoint that covers the record. ``apply`` only changes the state and holds the dead
   letters; ``flush`` returns them with the updates, both to be delivered before the
   checkpoint is sent. (Sending the letters from ``apply`` would leave a window where a
   flush checkpoints a state that already counted the record while its letter is still in
   flight: a crash then would lose the letter for good.)
3. A flush is taken whole, with nothing in between: the updates, the state they leave (the
   checkpoint) and the records that state includes.
4. The state is a pure function of the records applied in order, and of the moves of its
   watermark a quiet partition makes (6), each of which is checkpointed: a restored
   checkpoint plus the records after its offset gives the state an uninterrupted run would have.
   Records at or below its offset are skipped, and so are records whose raw source offset
   (stamped by validation) it has already counted: a validation stage replaying after a
   crash.
5. A revoked partition's engine is dropped, never reused: its next owner, this worker
   included, restores from the last delivered checkpoint.
6. A quiet partition closes its windows: when no record has been applied for
   ``idle_close_seconds`` (on the monotonic clock the flush is given: a partition catching up
   on a backlog is never quiet, whatever its event times), the flush moves the watermark as
   far as ``window_state.idle_watermark`` allows, to where the latest open window that can
   close does, and the windows it passes are emitted final. A move is a change of state: the
   flush that makes it checkpoints it (when the checkpoint is due), records pending or not,
   so that a restart judges later readings late or on time as the uninterrupted run did. A
   move closes something or is not made, so a quiet partition checkpoints at most once per
   closing, and one with nothing open never.
7. Closed windows (kept for late readings, closed_windows.py) and meters' recent indexes
   (meter_indexes.py) are committed to the partition's store only once a checkpoint that
   includes them is delivered (``checkpoint_delivered``), as that checkpoint's version; until
   then they are in the state, and in each checkpoint taken (the indexes as that checkpoint
   saw them: they change between flushes). So the store always holds one delivered
   checkpoint's closed windows, and a restore brings it to the checkpoint's (or refuses:
   ``StoreOutOfStep``).
8. Windows close on the progress of the producers still sending (``window_state``'s
   frontier): a producer holds windows open while it has been heard within
   ``idle_close_seconds``, so a partner sending yesterday's readings neither makes every
   other producer's readings late nor lets the windows it is filling close under it. The
   progress is state (checkpointed); who is still sending is not (the monotonic clock): a
   restored partition counts the producers it knows as heard at its first flush.

No network I/O and no faust: the agent, bench/indicator_throughput.py and the tests drive
this class; reference data and the store of closed windows are passed in by the caller.
"""

from __future__ import annotations

import json
import logging
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from typing import Generic, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import to_json

from reference.loader import ReferenceData
from schemas.catalogue import valid_topic
from schemas.dead_letter import DeadLetter, FieldProblem, Origin
from schemas.dead_letters import dead_letter, problems_from
from schemas.energy import EnergyReading
from schemas.families import FAMILIES
from schemas.local_calendar import UTC_CALENDAR, ZoneCalendar
from streams.indicators.catalogue import indicator_record
from streams.indicators.checkpoints import checkpoint_key
from streams.indicators.closed_windows import ClosedWindows, MemoryClosedWindows, StoreVersion
from streams.indicators.derived import derive
from streams.indicators.enrichment import Contribution, NoFactor, enrich
from streams.indicators.index_deltas import IndexAnomaly
from streams.indicators.meter_indexes import MeterIndexes, Recount, meter_terms, place_index
from streams.indicators.producer_activity import HOUR, ProducerActivity, Source, registered_devices
from streams.indicators.valid_records import VALID_RECORD_PARSERS
from streams.indicators.window_assignment import DEFAULT_WINDOWS_SECONDS, epoch_seconds
from streams.indicators.window_state import WindowState, idle_watermark
from streams.indicators.window_state_codec import PartitionState, decode, encode
from streams.validation.engine import SOURCE_OFFSET_HEADER, SOURCE_PARTITION_HEADER

log = logging.getLogger(__name__)
STAGE = "indicators"
FAMILY_OF_TOPIC = {valid_topic(name): name for name in FAMILIES}

Token = TypeVar("Token")
KeyValue = tuple[bytes, bytes]
"""A record to send: its Kafka key and value."""
Headers = Sequence[tuple[str, bytes]] | Mapping[str, bytes] | None


@dataclass(frozen=True, slots=True)
class ValidRecord:
    """One record of ``zc.valid.<family>``, as Kafka gave it."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Headers = None


class Ack(Enum):
    """When the shell acknowledges a record."""

    NOW = "now"  # the restored checkpoint already includes it
    WITH_CHECKPOINT = "with_checkpoint"  # its token comes back from the flush that covers it


@dataclass(frozen=True, slots=True)
class Applied:
    """What one record did: counters to add, and whether it was skipped (already counted)."""

    ack: Ack
    counters: Counter[str]
    skipped: bool = False


@dataclass(frozen=True, slots=True)
class Publication(Generic[Token]):
    """What a flush hands the shell, in the order it must go out: ``updates`` (to
    ``zc.indicators``) and ``dead_letters`` (to ``zc.deadletter``) delivered, then
    ``checkpoint`` (to ``zc.indicator-checkpoints``) delivered, then ``acks`` acknowledged."""

    updates: list[KeyValue]
    dead_letters: list[KeyValue]
    checkpoint: KeyValue | None = None
    acks: list[Token] = field(default_factory=list)


def read_valid_record(family: str, value: bytes | None) -> list[BaseModel]:
    """The events of one ``zc.valid.<family>`` record: a JSON array, or a single event as
    written before batching; an empty value holds none. ValueError if it is not one."""
    value = value or b"[]"
    if value.lstrip()[:1] == b"{":
        return [FAMILIES[family].adapter.validate_json(value)]
    events: list[BaseModel] = VALID_RECORD_PARSERS[family].validate_json(value)
    return events


def source_position(headers: Headers, partition: int) -> tuple[int, int] | None:
    """The raw (partition, offset) a valid record came from, if the validation stage stamped
    it; records stamped before the partition header came from the same partition number."""
    if not headers:
        return None
    found = dict(headers)
    if SOURCE_OFFSET_HEADER not in found:
        return None
    source_partition = found.get(SOURCE_PARTITION_HEADER)
    return (
        int(source_partition) if source_partition is not None else partition,
        int(found[SOURCE_OFFSET_HEADER]),
    )


Recounts = list[tuple[Contribution, int]]
"""Sums to add without counting a reading, each with its change to the window's count."""


def contribute(
    state: PartitionState, event: BaseModel, ref: ReferenceData, recounts: Recounts
) -> Contribution | NoFactor | IndexAnomaly | None:
    """Turn one event into its contribution, tracking meter indexes; None for a baseline. An
    index that arrived after a later one also recounts that one's delta (meter_indexes.py):
    appended to ``recounts``."""
    if isinstance(event, EnergyReading) and event.kind == "index":
        if (event.producer_id, event.event_id) in state.windows.seen:
            return enrich(event, ref, kwh=0.0)  # a repeat: the windows count it a duplicate
        history = state.indexes.get(event.meter_id)
        state.indexes_changed.add(event.meter_id)
        terms = meter_terms(event.commune, event.sector.value, event.carrier.value)
        if history is None:
            state.indexes[event.meter_id] = MeterIndexes.starting(event.quantity_kwh, event.event_time, terms)
            return None
        limit = ref.bounds.energy.power_limit_kw(event.carrier.value, event.sector.value)
        own, recount = place_index(history, event.quantity_kwh, event.event_time, limit, terms)
        if recount is not None:
            recounts += recount_contributions(event, recount, ref)
        if isinstance(own, IndexAnomaly):
            return None if own.kind == "first" else own
        return enrich(event, ref, kwh=own.kwh)
    return enrich(event, ref)


def recount_contributions(event: EnergyReading, recount: Recount, ref: ReferenceData) -> Recounts:
    """The delta taken back and the one counted instead, at the later index's time, with the
    late index's meter terms (its carrier, sector and commune: the same meter's)."""
    found: Recounts = []
    if recount.old == recount.new:  # the late index consumed nothing: the next delta is the same
        return found
    moved = event.model_copy(update={"event_time": recount.at})
    for kwh, count in ((recount.old, -1), (recount.new, 1)):
        if kwh is not None:
            # Negated whole: the sums, rounded per term, take back exactly what was added.
            contribution = enrich(moved, ref, kwh=kwh * count)
            if isinstance(contribution, Contribution):
                found.append((contribution, count))
    return found


def record_origin(record: ValidRecord, index: int | None = None) -> Origin:
    """Where a valid record (or its ``index``-th event) is: its topic, partition, offset, key."""
    key = record.key.decode(errors="replace") if record.key else None
    # Validated: on pydantic 2 that is cheaper than model_construct.
    return Origin(
        transport="kafka", topic=record.topic, partition=record.partition,
        offset=record.offset, key=key, index=index,
    )  # fmt: skip


def unreadable_letter(
    family: str, value: bytes, origin: Origin, exc: ValueError, now: datetime
) -> DeadLetter:
    """The dead letter of a valid record this stage cannot read: verbatim, with why."""
    if isinstance(exc, ValidationError):
        problems = problems_from(exc)
    else:
        problems = [FieldProblem(path="", type="unreadable_record", message=f"{type(exc).__name__}: {exc}")]
    return dead_letter(family=family, stage=STAGE, raw=value, problems=problems, origin=origin, now=now)


def refused_problem(refused: NoFactor | IndexAnomaly) -> FieldProblem:
    """Why an event read was not counted, as its dead letter says it."""
    if isinstance(refused, NoFactor):
        return FieldProblem(path=refused.path, type="no_emission_factor", message=refused.message)
    return FieldProblem(path="quantity", type=f"index_{refused.kind}", message=refused.message)


class RegisteredDevices:
    """Devices per (producer, commune) of the registry, counted once per version of the
    reference data (a reload replaces the object)."""

    def __init__(self) -> None:
        self._of: ReferenceData | None = None
        self._counts: dict[Source, int] = {}

    def __call__(self, reference: ReferenceData) -> dict[Source, int]:
        if reference is not self._of:
            self._of, self._counts = reference, registered_devices(reference.devices)
        return self._counts


class IndicatorPartition(Generic[Token]):
    """The indicator state of one ``zc.valid.<family>`` partition and its bookkeeping.

    ``checkpoint`` is the partition's last checkpoint (None: start empty); a token is
    whatever the shell acknowledges a record with (a faust event; an offset in tests);
    ``idle_close_seconds`` without a record close the windows of a quiet partition (invariant
    6; 0: never); ``store`` keeps its closed windows (invariant 7; None: in memory), and is
    brought to the checkpoint's version here (``StoreOutOfStep`` when it cannot be)."""

    def __init__(
        self,
        topic: str,
        partition: int,
        checkpoint: bytes | None = None,
        *,
        grace_seconds: int,
        checkpoint_seconds: float,
        idle_close_seconds: float = 0,
        store: ClosedWindows | None = None,
        zone: ZoneCalendar = UTC_CALENDAR,
    ) -> None:
        self.topic, self.partition = topic, partition
        self.family = FAMILY_OF_TOPIC[topic]
        self.device_field = FAMILIES[self.family].device_field
        self.checkpoint_seconds = checkpoint_seconds
        self.state = (
            decode(checkpoint, partition, zone)
            if checkpoint
            else PartitionState(WindowState(DEFAULT_WINDOWS_SECONDS, grace_seconds, calendar=zone))
        )
        store = store if store is not None else MemoryClosedWindows()
        self.state.windows.attach(store, self.state.carried_indexes)
        for meter, blob in store.meter_indexes().items():  # the checkpoint carried the latest
            self.state.indexes.setdefault(meter, MeterIndexes.from_doc(json.loads(blob)))
        self.state.carried_indexes = {}
        # The version and watermark of the checkpoint in flight, and the meter indexes it carries.
        self._carried: tuple[StoreVersion, int, dict[str, bytes]] | None = None
        # Meters whose indexes changed in checkpoints taken since the store's last commit.
        self._uncommitted: set[str] = set()
        if self.state.activity is None:
            self.state.activity = ProducerActivity(grace_seconds, calendar=self.state.windows.calendar)
        self.activity: ProducerActivity = self.state.activity
        self.registered = RegisteredDevices()
        self._pending: list[Token] = []  # records applied, not yet covered by a checkpoint
        self._letters: list[KeyValue] = []  # dead letters of those records, not yet flushed
        # A checkpoint is the whole state (20 000 event ids): taken every few flushes, not at
        # each; a crash then replays a few seconds more, to the same state.
        self._checkpointed_at = -math.inf
        # Quietness (invariant 6): ``apply`` only notes that a record came; the flush, which has
        # the monotonic clock, dates it. A restored partition is quiet from its first flush.
        self.idle_close_seconds = idle_close_seconds
        self._received = False  # a record applied since the last flush
        self._quiet_since: float | None = None  # the last flush that followed a record (monotonic)
        self._quiet_watermarks = (0, 0)  # the window state's and producer activity's watermarks then
        self._moved = False  # the watermark moved by quietness since the last checkpoint
        # Producers still sending (invariant 8): when each was last heard, on the monotonic
        # clock; those a restored state knows count as heard at the first flush.
        self._heard_at: dict[str, float] = {}
        self._restored_producers = list(self.state.windows.producers)

    def apply(self, record: ValidRecord, reference: ReferenceData, now: datetime, token: Token) -> Applied:
        """Count one record of this partition (``now`` dates its dead letters)."""
        self._received = True  # a skipped record too: the partition is being read, not quiet
        state = self.state
        if record.offset <= state.offset:
            return Applied(Ack.NOW, Counter(restored_records_skipped=1), skipped=True)
        source = source_position(record.headers, record.partition)
        if source is not None and source[1] <= state.source_offsets.get(source[0], -1):
            state.offset = record.offset
            self._pending.append(token)
            return Applied(Ack.WITH_CHECKPOINT, Counter(replayed_records_skipped=1), skipped=True)
        counters: Counter[str] = Counter()
        family = self.family
        try:
            events = read_valid_record(family, record.value)
        except ValueError as exc:  # not ours (validation writes these records): dead-lettered whole
            counters["unreadable_records"] += 1
            where = (record.topic, record.partition, record.offset)
            log.error("unreadable record at %s[%d]@%d, dead-lettered: %s", *where, exc)
            try:
                letter = unreadable_letter(family, record.value or b"", record_origin(record), exc, now)
                self._letters.append((family.encode(), letter.model_dump_json(by_alias=True).encode()))
            except Exception:
                counters["dead_letters_not_sent"] += 1
                log.exception(
                    "unreadable record at %s[%d]@%d not dead-lettered: read it on its topic", *where
                )
            events = []
        if source is not None:
            state.source_offsets[source[0]] = source[1]
        self.activity.add_events(events, self.device_field, reference.devices, reference.communes)
        contributions: list[Contribution] = []
        recounts: Recounts = []
        keep = contributions.append
        for index, event in enumerate(events):
            outcome: Contribution | NoFactor | IndexAnomaly | None
            try:
                outcome = contribute(state, event, reference, recounts)
            except Exception as exc:  # a bug of ours: report the event, never skip it silently
                log.exception("enrichment failed at %s[%d]@%d #%d", *self._where(record), index)
                outcome = NoFactor("", f"internal error: {exc!r}")
            if isinstance(outcome, Contribution):
                keep(outcome)
            elif outcome is None:
                counters["index_baselines"] += 1
            else:
                self._refuse(record, index, event, outcome, now, counters)
        counters.update(state.windows.add_all(contributions))
        if recounts:
            state.windows.recount(recounts)
            counters["index_recounts"] += len(recounts)
        state.offset = record.offset
        self._pending.append(token)
        return Applied(Ack.WITH_CHECKPOINT, counters)

    def flush(
        self, now: datetime, monotonic_now: float, reference: ReferenceData, *, checkpoint_now: bool = False
    ) -> Publication[Token]:
        """What changed and closed since the last flush, its dead letters, and, when
        ``checkpoint_seconds`` have passed since the last one (or ``checkpoint_now``: the last
        flush on the way out) and records are pending, the checkpoint and the tokens it covers.
        ``now`` dates the updates; with ``monotonic_now`` it also says how long the partition
        has been quiet, and where that takes its watermark (invariant 6): pass the true clock."""
        state = self.state
        if self._received or self._quiet_since is None:
            self._received, self._quiet_since = False, monotonic_now
            self._quiet_watermarks = (state.windows.watermark, self.activity.watermark)
        elif self.idle_close_seconds > 0 and monotonic_now - self._quiet_since >= self.idle_close_seconds:
            self._close_quiet(now, monotonic_now - self._quiet_since)
        windows = state.windows.flush(self._holding(monotonic_now))
        windows += derive(windows, state.windows, reference.who_daily_guidelines, reference.populations)
        windows += self.activity.flush(self.registered(reference))
        now_json = to_json(now)
        calendar = state.windows.calendar
        updates = [indicator_record(update, now, now_json, calendar) for update in windows]
        letters, self._letters = self._letters, []
        due = checkpoint_now or monotonic_now - self._checkpointed_at >= self.checkpoint_seconds
        if not (due and (self._pending or self._moved)):
            return Publication(updates, letters)
        covered, self._pending = self._pending, []
        self._checkpointed_at, self._moved = monotonic_now, False
        self._uncommitted |= state.indexes_changed
        state.indexes_changed = set()
        carried = {m: state.indexes[m].to_doc() for m in self._uncommitted}
        checkpoint = (checkpoint_key(self.topic, self.partition), encode(state, carried))
        blobs = {m: to_json(doc) for m, doc in carried.items()}
        self._carried = (state.windows.carried_version(bool(carried)), state.windows.watermark, blobs)
        return Publication(updates, letters, checkpoint, covered)

    def checkpoint_delivered(self) -> None:
        """The last flush's checkpoint is in Kafka: commit the closed windows it carries to
        the store (invariant 7). Call it before the next flush."""
        if self._carried is not None:
            self.state.windows.commit(*self._carried)
            self._carried = None
            self._uncommitted.clear()

    def close(self) -> None:
        """Release the store (a revoked partition's next owner opens it)."""
        self.state.windows.store.close()

    def _holding(self, monotonic_now: float) -> list[str]:
        """The producers heard within the idle time, whose progress holds windows open
        (invariant 8); none when quiet closing is off (``idle_close_seconds`` 0: windows close
        on the partition's watermark)."""
        if self.idle_close_seconds <= 0:
            return []
        heard = self._heard_at
        for producer in self._restored_producers:
            heard.setdefault(producer, monotonic_now)
        self._restored_producers = []
        for producer in self.state.windows.heard:
            heard[producer] = monotonic_now
        for producer in [p for p, at in heard.items() if monotonic_now - at >= self.idle_close_seconds]:
            del heard[producer]
        return list(heard)

    def _close_quiet(self, now: datetime, quiet_seconds: float) -> None:
        """Move the watermarks of a partition quiet for ``quiet_seconds`` each to the latest
        point ``idle_watermark`` allows at which one of its open windows (producer-activity
        hours) closes. The window state and the producer activity keep a clock each (an
        interval reading is placed where it starts, and its producer seen when it ends): each
        runs on from where it was. Called at the start of a flush, which then emits what
        closes; nothing is pending, as no record came since the last flush settled it."""
        windows, activity = self.state.windows, self.activity
        wall = epoch_seconds(now)
        windows_from, activity_from = self._quiet_watermarks
        moved = False
        if windows_from:  # 0: it never saw an event, and nothing is open
            limit = idle_watermark(windows_from, quiet_seconds, wall, windows.grace_seconds)
            close = windows.latest_close_until(limit)
            moved = close is not None and windows.advance_watermark(close)
        if activity_from:
            limit = idle_watermark(activity_from, quiet_seconds, wall, activity.grace_seconds)
            closes = [
                close
                for _, _, hour in activity.hours
                if activity.watermark < (close := hour + HOUR + activity.grace_seconds) <= limit
            ]
            if closes:
                activity.watermark, moved = max(closes), True
        if moved:
            self._moved = True
            log.info(
                "%s[%d] quiet for %.0f s: its watermark moves to %s, closing the windows it passes",
                self.topic, self.partition, quiet_seconds,
                datetime.fromtimestamp(windows.watermark, UTC).isoformat(),
            )  # fmt: skip

    def _refuse(
        self,
        record: ValidRecord,
        index: int,
        event: BaseModel,
        refused: NoFactor | IndexAnomaly,
        now: datetime,
        counters: Counter[str],
    ) -> None:
        problem = refused_problem(refused)
        counters[problem.type] += 1
        origin = Origin(
            transport="kafka",
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            index=index,
        )
        try:
            raw = event.model_dump_json(by_alias=True).encode()
            letter = dead_letter(
                family=self.family, stage=STAGE, raw=raw, problems=[problem], origin=origin, now=now
            )
            self._letters.append((self.family.encode(), letter.model_dump_json(by_alias=True).encode()))
        except Exception:  # a bug of ours: counted, the event stays on its topic
            counters["dead_letters_not_sent"] += 1
            log.exception("event at %s[%d]@%d #%d not dead-lettered", *self._where(record), index)

    @staticmethod
    def _where(record: ValidRecord) -> tuple[str, int, int]:
        return record.topic, record.partition, record.offset
