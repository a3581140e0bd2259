"""The indicator agent: validated events in, indicator updates out on ``zc.indicators``.

Per source partition, a `PartitionState` (window sums, meter indexes) is built by pure
functions (docs/indicators.md); a one-second timer flushes what changed and what closed, to
Kafka and to InfluxDB (one idempotent point per series and window start).

Not yet exact across a restart, crash or not: the state lives in memory, so a restarted
worker starts its windows afresh and its next updates overwrite the totals of the windows
open at the restart with partial ones. The checkpoint-and-replay design that fixes this is
in docs/indicators.md and `streams/window_state_codec.py` is its checkpoint format; wiring it
here is the next step of the indicator-engine issue.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import faust
from pydantic import BaseModel

from reference.loader import ReferenceData, ReferenceStore
from schemas.catalogue import DEAD_LETTER_TOPIC, INDICATOR_TOPIC, valid_topic
from schemas.dead_letter import FieldProblem, Origin
from schemas.energy import EnergyReading
from schemas.families import FAMILIES
from sinks.influx_points import indicator_point
from sinks.influx_writer import InfluxWriter
from streams.dead_letters import dead_letter
from streams.enrichment import Contribution, NoFactor, enrich
from streams.index_deltas import IndexAnomaly, IndexState, index_delta
from streams.indicator_catalogue import series_key, to_indicator_update
from streams.validation_agent import SOURCE_OFFSET_HEADER, VALID_ARRAY, bytes_topic
from streams.window_assignment import DEFAULT_WINDOWS_SECONDS
from streams.window_state import WindowState
from streams.window_state_codec import PartitionState
from zerocarbon.settings import Settings

log = logging.getLogger(__name__)
STAGE = "indicators"
FLUSH_EVERY_SECONDS = 1.0


def _problem_letter(
    family: str, event: BaseModel, problem: FieldProblem, origin: Origin, now: datetime
) -> Any:
    raw = event.model_dump_json(by_alias=True).encode()
    return dead_letter(family=family, stage=STAGE, raw=raw, problems=[problem], origin=origin, now=now)


def source_offset(headers: Any) -> int | None:
    """The raw offset a valid record came from, if the validation stage stamped it."""
    for name, value in headers or ():
        if name == SOURCE_OFFSET_HEADER:
            return int(value)
    return None


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
    app: faust.App, settings: Settings, store: ReferenceStore, counters: Counter[str]
) -> None:
    """Attach the indicator agent; ``counters`` tally outcomes for the worker's /counters page."""
    source = bytes_topic(app, *[valid_topic(name) for name in FAMILIES])
    out = bytes_topic(app, INDICATOR_TOPIC)
    dead_topic = bytes_topic(app, DEAD_LETTER_TOPIC)
    family_of = {valid_topic(name): name for name in FAMILIES}
    states: dict[tuple[str, int], PartitionState] = {}

    def state_for(tp: tuple[str, int]) -> PartitionState:
        if tp not in states:
            states[tp] = PartitionState(
                WindowState(DEFAULT_WINDOWS_SECONDS, settings.indicator_grace_seconds)
            )
        return states[tp]

    writer = InfluxWriter(settings)

    @app.timer(interval=FLUSH_EVERY_SECONDS)
    async def publish_indicator_updates() -> None:
        now = datetime.now(UTC)
        points = []
        for state in list(states.values()):
            for update in state.windows.flush():
                indicator = to_indicator_update(update, now)
                await out.send(
                    key=series_key(indicator), value=indicator.model_dump_json(by_alias=True).encode()
                )
                points.append(indicator_point(indicator))
        if points:
            # Idempotent points (series + window start), retried while InfluxDB is away. The
            # buffered, decoupled sink of the time-series sink issue is to replace this.
            if not writer.is_open:
                await writer.__aenter__()
            await writer.write_until_accepted(points)

    @app.agent(source)
    async def compute_indicators(stream: faust.StreamT[bytes]) -> AsyncIterator[None]:
        async for event in stream.events():
            message = event.message
            tp = (message.topic, message.partition)
            state = state_for(tp)
            source = source_offset(message.headers)
            if source is not None:
                if source <= state.source_offset:
                    # The validation stage replayed this raw record after a crash: already counted.
                    counters["replayed_records_skipped"] += 1
                    yield None
                    continue
                state.source_offset = source
            family = family_of[message.topic]
            now = datetime.now(UTC)
            ref = store.current()
            try:
                value = event.value or b"[]"
                if value.lstrip()[:1] == b"{":  # a single event, as written before batching
                    events = [FAMILIES[family].adapter.validate_json(value)]
                else:
                    events = VALID_ARRAY[family].validate_json(value)
            except ValueError as exc:  # not ours: validation writes these records
                log.error("unreadable record at %s[%d]@%d: %s", *tp, message.offset, exc)
                events = []
                counters["unreadable_records"] += 1
            contributions: list[Contribution] = []
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
            yield None
