"""The indicator agent: validated events in, indicator updates out, exact across restarts.

Per source partition, a `PartitionState` (window sums, meter indexes, the last offset it
includes, the highest raw offset counted) is built by pure functions (docs/indicators.md).
Events are read without acknowledgement; once a second the flush sends what changed and
what closed to ``zc.indicators`` (which ``zerocarbon sink`` writes to InfluxDB), and every
``ZC_INDICATOR_CHECKPOINT_SECONDS`` it writes the state as one checkpoint record to
``zc.indicator-checkpoints`` and, once Kafka has it, acknowledges the events it covers, so
the committed offset never passes the checkpoint. A
restarted worker restores the checkpoint and skips what it includes; a valid record
replayed by a restarted validation stage is skipped by its source offset. A record that
cannot be read is dead-lettered whole (``zc.deadletter``, stage ``indicators``), counted
under ``unreadable_records``, and acknowledged like the others once Kafka has its letter.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import faust
from pydantic import BaseModel, ValidationError
from pydantic_core import to_json

from reference.loader import ReferenceData, ReferenceStore
from schemas.catalogue import CHECKPOINT_TOPIC, DEAD_LETTER_TOPIC, INDICATOR_TOPIC, valid_topic
from schemas.dead_letter import DeadLetter, FieldProblem, Origin
from schemas.dead_letters import dead_letter, problems_from
from schemas.energy import EnergyReading
from schemas.families import FAMILIES
from streams.indicators.catalogue import indicator_record
from streams.indicators.checkpoints import CheckpointReader, checkpoint_key
from streams.indicators.derived import derive
from streams.indicators.enrichment import Contribution, NoFactor, enrich
from streams.indicators.index_deltas import IndexAnomaly, IndexState, index_delta
from streams.indicators.producer_activity import ProducerActivity, registered_devices
from streams.indicators.valid_records import VALID_RECORD_PARSERS
from streams.indicators.window_assignment import DEFAULT_WINDOWS_SECONDS
from streams.indicators.window_state import WindowState
from streams.indicators.window_state_codec import PartitionState, decode, encode
from streams.validation.agent import SOURCE_OFFSET_HEADER, SOURCE_PARTITION_HEADER, bytes_topic
from streams.worker_config import WorkerConfig

log = logging.getLogger(__name__)
STAGE = "indicators"
FLUSH_EVERY_SECONDS = 1.0


def _problem_letter(
    family: str, event: BaseModel, problem: FieldProblem, origin: Origin, now: datetime
) -> Any:
    raw = event.model_dump_json(by_alias=True).encode()
    return dead_letter(family=family, stage=STAGE, raw=raw, problems=[problem], origin=origin, now=now)


def read_valid_record(family: str, value: bytes | None) -> list[BaseModel]:
    """The events of one ``zc.valid.<family>`` record: a JSON array, or a single event as
    written before batching; an empty value holds none. ValueError if it is not one."""
    value = value or b"[]"
    if value.lstrip()[:1] == b"{":
        return [FAMILIES[family].adapter.validate_json(value)]
    events: list[BaseModel] = VALID_RECORD_PARSERS[family].validate_json(value)
    return events


def kafka_origin(message: Any) -> Origin:
    """Where a Kafka message is: its topic, partition, offset and key."""
    key = message.key.decode(errors="replace") if message.key else None
    return Origin(
        transport="kafka", topic=message.topic, partition=message.partition, offset=message.offset, key=key
    )


def unreadable_letter(
    family: str, value: bytes, origin: Origin, exc: ValueError, now: datetime
) -> DeadLetter:
    """The dead letter of a valid record this stage cannot read: verbatim, with why."""
    if isinstance(exc, ValidationError):
        problems = problems_from(exc)
    else:
        problems = [FieldProblem(path="", type="unreadable_record", message=f"{type(exc).__name__}: {exc}")]
    return dead_letter(family=family, stage=STAGE, raw=value, problems=problems, origin=origin, now=now)


Deliver = Callable[[bytes, bytes], Awaitable[None]]
"""``deliver(key, value)``: send a record to ``zc.deadletter``; returns once Kafka has it."""


async def dead_letter_unreadable(
    family: str, message: Any, exc: ValueError, counters: Counter[str], deliver: Deliver, now: datetime
) -> None:
    """Count an unreadable record and dead-letter it verbatim; returns once Kafka has the
    letter, so the caller acknowledges the record after it. Never raises: faust would skip
    the message."""
    counters["unreadable_records"] += 1
    where = (message.topic, message.partition, message.offset)
    log.error("unreadable record at %s[%d]@%d, dead-lettered: %s", *where, exc)
    try:
        letter = unreadable_letter(family, message.value or b"", kafka_origin(message), exc, now)
        await deliver(family.encode(), letter.model_dump_json(by_alias=True).encode())
    except Exception:
        counters["dead_letters_not_sent"] += 1
        log.exception("unreadable record at %s[%d]@%d not dead-lettered: read it on its topic", *where)


def source_position(headers: Any, partition: int) -> tuple[int, int] | None:
    """The raw (partition, offset) a valid record came from, if the validation stage stamped
    it; records stamped before the partition header came from the same partition number."""
    found = dict(headers or ())
    if SOURCE_OFFSET_HEADER not in found:
        return None
    source_partition = found.get(SOURCE_PARTITION_HEADER)
    return (
        int(source_partition) if source_partition is not None else partition,
        int(found[SOURCE_OFFSET_HEADER]),
    )


def contribute(
    state: PartitionState, event: BaseModel, ref: ReferenceData
) -> Contribution | NoFactor | IndexAnomaly | None:
    """Turn one event into its contribution, tracking meter indexes; None for a baseline."""
    if isinstance(event, EnergyReading) and event.kind == "index":
        previous = state.indexes.get(event.meter_id)
        limit = ref.bounds.energy.power_limit_kw(event.carrier.value, event.sector.value)
        delta = index_delta(previous, event.quantity_kwh, event.event_time, limit)
        if not (isinstance(delta, IndexAnomaly) and delta.kind == "out_of_order"):
            state.indexes[event.meter_id] = IndexState(event.quantity_kwh, event.event_time)
        if isinstance(delta, IndexAnomaly):
            return None if delta.kind == "first" else delta
        return enrich(event, ref, kwh=delta.kwh)
    return enrich(event, ref)


def register_indicator_agent(
    app: faust.App, config: WorkerConfig, store: ReferenceStore, counters: Counter[str]
) -> None:
    """Attach the indicator agent; ``counters`` tally outcomes for the worker's /counters page."""
    source = bytes_topic(app, *[valid_topic(name) for name in FAMILIES])
    out = bytes_topic(app, INDICATOR_TOPIC)
    dead_topic = bytes_topic(app, DEAD_LETTER_TOPIC)
    family_of = {valid_topic(name): name for name in FAMILIES}
    checkpoint_topic = bytes_topic(app, CHECKPOINT_TOPIC)
    states: dict[tuple[str, int], PartitionState] = {}
    # Events read but not yet covered by a delivered checkpoint: acknowledged only then, so
    # the committed offset never passes the checkpoint.
    pending: dict[tuple[str, int], list[Any]] = {}
    # A checkpoint is the whole state of a partition (with its 20 000 event ids, 4.6 ms and
    # 64 KB compressed on the benchmark suite's workload): taken every few flushes, not at
    # each, it costs a fifth; a crash replays a few seconds more, to the same state.
    checkpointed_at: dict[tuple[str, int], float] = {}
    checkpoint_reader = CheckpointReader(config.kafka_bootstrap)

    async def state_for(tp: tuple[str, int]) -> PartitionState:
        if tp not in states:
            saved = (await checkpoint_reader.read()).get(checkpoint_key(*tp))
            states[tp] = (
                decode(saved, tp[1])
                if saved
                else PartitionState(WindowState(DEFAULT_WINDOWS_SECONDS, config.grace_seconds))
            )
            if states[tp].activity is None:
                states[tp].activity = ProducerActivity(config.grace_seconds)
            pending[tp] = []
            log.info("indicator state of %s[%d] restored up to offset %d", *tp, states[tp].offset)
        return states[tp]

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    async def forget_revoked(sender: Any, *args: Any, **kwargs: Any) -> None:
        # Another worker may take them: it restores from the last checkpoint.
        revoked = args[0] if args else kwargs.get("revoked", ())
        for tp in revoked:
            states.pop((tp.topic, tp.partition), None)
            pending.pop((tp.topic, tp.partition), None)
            checkpointed_at.pop((tp.topic, tp.partition), None)

    async def deliver_dead_letter(key: bytes, value: bytes) -> None:
        await (await dead_topic.send(key=key, value=value))

    registered: dict[int, dict[tuple[str, str], int]] = {}

    def registered_for(ref: ReferenceData) -> dict[tuple[str, str], int]:
        """Devices per (producer, commune), computed once per version of the reference data."""
        if id(ref) not in registered:
            registered.clear()
            registered[id(ref)] = registered_devices(ref.devices)
        return registered[id(ref)]

    @app.timer(interval=FLUSH_EVERY_SECONDS)
    async def publish_indicator_updates() -> None:
        now = datetime.now(UTC)
        now_json = to_json(now)
        checkpoints = []
        sent: list[Any] = []
        for tp, state in list(states.items()):
            # Taken together, with no await in between: the updates, the state they leave
            # and the events that state includes.
            updates = state.windows.flush()
            ref = store.current()
            updates += derive(updates, state.windows, ref.who_daily_guidelines)
            if state.activity is not None:
                updates += state.activity.flush(registered_for(ref))
            covered = pending.get(tp, [])
            due = time.monotonic() - checkpointed_at.get(tp, -math.inf) >= config.checkpoint_seconds
            if covered and due:
                pending[tp] = []
                checkpointed_at[tp] = time.monotonic()
                checkpoints.append((checkpoint_key(*tp), encode(state), covered))
            for update in updates:
                key, value = indicator_record(update, now, now_json)
                sent.append(await out.send(key=key, value=value))
        # The updates must be in Kafka before the checkpoint that says they were published: a
        # crash in between would otherwise restore a state whose closed windows nobody sees.
        await asyncio.gather(*sent)
        for key, blob, covered in checkpoints:
            delivered = await checkpoint_topic.send(key=key, value=blob)
            await delivered
            for event in covered:
                event.ack()

    @app.agent(source)
    async def compute_indicators(stream: faust.StreamT[bytes]) -> AsyncIterator[None]:
        # noack: an event is acknowledged by the flush, once a checkpoint includes it.
        async for event in stream.noack().events():  # type: ignore[attr-defined]
            message = event.message
            tp = (message.topic, message.partition)
            state = await state_for(tp)
            if message.offset <= state.offset:  # already in the restored state
                counters["restored_records_skipped"] += 1
                event.ack()
                yield None
                continue
            source = source_position(message.headers, message.partition)
            if source is not None:
                raw_partition, raw_offset = source
                if raw_offset <= state.source_offsets.get(raw_partition, -1):
                    # The validation stage replayed this raw record after a crash: already counted.
                    counters["replayed_records_skipped"] += 1
                    state.offset = message.offset
                    pending[tp].append(event)
                    yield None
                    continue
            family = family_of[message.topic]
            now = datetime.now(UTC)
            try:
                events = read_valid_record(family, event.value)
            except ValueError as exc:  # not ours (validation writes these records): dead-lettered
                # Nothing of this record is in the state yet, so a checkpoint taken while we
                # wait for Kafka is still exact; the next one covers the record and acks it.
                await dead_letter_unreadable(family, message, exc, counters, deliver_dead_letter, now)
                if states.get(tp) is not state:  # revoked meanwhile: its new owner re-reads it
                    yield None
                    continue
                events = []
            if source is not None:
                state.source_offsets[source[0]] = source[1]
            ref = store.current()
            contributions: list[Contribution] = []
            if state.activity is not None:
                state.activity.add_events(events, FAMILIES[family].device_field)
            for index, item in enumerate(events):
                outcome: Contribution | NoFactor | IndexAnomaly | None
                try:
                    outcome = contribute(state, item, ref)
                except Exception as exc:  # a bug of ours: report the event, never skip it silently
                    log.exception("enrichment failed at %s[%d]@%d #%d", *tp, message.offset, index)
                    outcome = NoFactor("", f"internal error: {exc!r}")
                if isinstance(outcome, Contribution):
                    contributions.append(outcome)
                elif outcome is None:
                    counters["index_baselines"] += 1
                else:
                    origin = Origin.model_construct(
                        transport="kafka", topic=message.topic, partition=message.partition,
                        offset=message.offset, key=None, index=index,
                    )  # fmt: skip
                    if isinstance(outcome, NoFactor):
                        problem = FieldProblem(
                            path=outcome.path, type="no_emission_factor", message=outcome.message
                        )
                    else:
                        problem = FieldProblem(
                            path="quantity", type=f"index_{outcome.kind}", message=outcome.message
                        )
                    counters[problem.type] += 1
                    letter = _problem_letter(family, item, problem, origin, now)
                    await dead_topic.send(
                        key=family.encode(), value=letter.model_dump_json(by_alias=True).encode()
                    )
            counters.update(state.windows.add_all(contributions))
            state.offset = message.offset
            pending[tp].append(event)
            yield None
