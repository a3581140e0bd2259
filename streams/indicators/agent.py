"""The indicator agent: validated events in, indicator updates out, exact across restarts.

A thin loop around streams/indicators/engine.py, one ``IndicatorPartition`` per source
partition, which holds the bookkeeping and its invariants: faust event -> ``ValidRecord`` ->
``engine.apply`` -> count (and acknowledge at once what a restored checkpoint includes).
Once a second the flush sends each engine's updates to ``zc.indicators`` (which
``zerocarbon sink`` writes to InfluxDB) and its dead letters to ``zc.deadletter``, waits
for Kafka to have them, then sends the checkpoint when one is due (every
``ZC_INDICATOR_CHECKPOINT_SECONDS``) to ``zc.indicator-checkpoints``, waits again, and
acknowledges the records it covers. A partition met for the first time is restored from
its checkpoint; a revoked one is forgotten.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import faust

from reference.loader import ReferenceStore
from schemas.catalogue import CHECKPOINT_TOPIC, DEAD_LETTER_TOPIC, INDICATOR_TOPIC, valid_topic
from schemas.families import FAMILIES
from streams.app import bytes_topic
from streams.indicators.checkpoints import CheckpointReader, checkpoint_key
from streams.indicators.engine import Ack, IndicatorPartition, KeyValue, Publication, ValidRecord
from streams.worker_config import WorkerConfig

log = logging.getLogger(__name__)
FLUSH_EVERY_SECONDS = 1.0

Send = Callable[[bytes, bytes], Awaitable[Awaitable[object]]]
"""``send(key, value)`` hands a record to the producer; what it returns completes once Kafka
has the record (faust's ``topic.send``)."""


async def deliver_dead_letters(letters: Sequence[KeyValue], send: Send, counters: Counter[str]) -> None:
    """Send the dead letters and wait until Kafka has them. One that cannot be sent is
    counted (``dead_letters_not_sent``) and logged with its content, never raised: its record
    is acknowledged with the others (read the record on its topic)."""
    sent: list[tuple[bytes, Awaitable[object]]] = []
    for key, value in letters:
        try:
            sent.append((value, await send(key, value)))
        except Exception as exc:
            _not_sent(value, exc, counters)
    results = await asyncio.gather(*(delivered for _, delivered in sent), return_exceptions=True)
    for (value, _), result in zip(sent, results, strict=True):
        if isinstance(result, Exception):
            _not_sent(value, result, counters)


def _not_sent(letter: bytes, exc: Exception, counters: Counter[str]) -> None:
    counters["dead_letters_not_sent"] += 1
    log.error("dead letter not sent (%r), its record is acknowledged anyway: %s", exc, letter[:2000])


def register_indicator_agent(
    app: faust.App, config: WorkerConfig, store: ReferenceStore, counters: Counter[str]
) -> None:
    """Attach the indicator agent; ``counters`` tally outcomes for the worker's /counters page."""
    source = bytes_topic(app, *[valid_topic(name) for name in FAMILIES])
    out = bytes_topic(app, INDICATOR_TOPIC)
    dead_topic = bytes_topic(app, DEAD_LETTER_TOPIC)
    checkpoint_topic = bytes_topic(app, CHECKPOINT_TOPIC)
    engines: dict[tuple[str, int], IndicatorPartition[Any]] = {}
    checkpoint_reader = CheckpointReader(config.kafka)

    async def engine_for(tp: tuple[str, int]) -> IndicatorPartition[Any]:
        engine = engines.get(tp)
        if engine is None:
            saved = (await checkpoint_reader.read()).get(checkpoint_key(*tp))
            engine = engines[tp] = IndicatorPartition(
                *tp, saved, grace_seconds=config.grace_seconds, checkpoint_seconds=config.checkpoint_seconds
            )
            log.info("indicator state of %s[%d] restored up to offset %d", *tp, engine.state.offset)
        return engine

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    async def forget_revoked(sender: Any, *args: Any, **kwargs: Any) -> None:
        # Another worker may take them: it restores from the last checkpoint.
        revoked = args[0] if args else kwargs.get("revoked", ())
        for tp in revoked:
            engines.pop((tp.topic, tp.partition), None)

    async def to_dead_letters(key: bytes, value: bytes) -> Awaitable[object]:
        return await dead_topic.send(key=key, value=value)

    @app.timer(interval=FLUSH_EVERY_SECONDS)
    async def publish_indicator_updates() -> None:
        now, reference = datetime.now(UTC), store.current()
        flushed: list[tuple[tuple[str, int], IndicatorPartition[Any], Publication[Any]]] = [
            (tp, engine, engine.flush(now, time.monotonic(), reference))
            for tp, engine in list(engines.items())
        ]
        # Everything the checkpoints cover in Kafka first: a crash in between would restore a
        # state whose updates or dead letters nobody received.
        sent = [await out.send(key=key, value=value) for _, _, p in flushed for key, value in p.updates]
        letters = [letter for _, _, p in flushed for letter in p.dead_letters]
        await deliver_dead_letters(letters, to_dead_letters, counters)
        await asyncio.gather(*sent)
        for tp, engine, publication in flushed:
            if publication.checkpoint is None:
                continue
            if engines.get(tp) is not engine:
                continue  # revoked meanwhile: its next owner restores from the last checkpoint
            key, blob = publication.checkpoint
            await (await checkpoint_topic.send(key=key, value=blob))
            for event in publication.acks:
                event.ack()

    @app.agent(source)
    async def compute_indicators(stream: faust.StreamT[bytes]) -> AsyncIterator[None]:
        # noack: an event is acknowledged once a delivered checkpoint includes it.
        async for event in stream.noack().events():  # type: ignore[attr-defined]
            message = event.message
            engine = await engine_for((message.topic, message.partition))
            record = ValidRecord(
                message.topic, message.partition, message.offset, message.key, message.value, message.headers
            )
            applied = engine.apply(record, store.current(), datetime.now(UTC), event)
            counters.update(applied.counters)
            if applied.ack is Ack.NOW:
                event.ack()
            yield None
