"""The indicator agent: validated events in, indicator updates out, exact across restarts.

A thin loop around streams/indicators/engine.py, one ``IndicatorPartition`` per source
partition, which holds the bookkeeping and its invariants: faust event -> ``ValidRecord`` ->
``engine.apply`` -> count (and acknowledge at once what a restored checkpoint includes).
Every ``ZC_INDICATOR_FLUSH_SECONDS`` (one by default) the flush sends each engine's updates
to ``zc.indicators`` (which ``zerocarbon sink`` writes to InfluxDB) and its dead letters to
``zc.deadletter``, waits for Kafka to have them, then sends the checkpoint when one is due (every
``ZC_INDICATOR_CHECKPOINT_SECONDS``) to ``zc.indicator-checkpoints``, waits again, and
acknowledges the records it covers. A partition assigned (or met) is restored from its
checkpoint; a revoked one is forgotten. On the way out (SIGTERM) one last flush
checkpoints every partition, within ``LAST_FLUSH_SECONDS``. A loop that raises is fatal
(streams/worker_health.py): the worker stops and exits non-zero.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import faust
from aiokafka.errors import KafkaError

from reference.loader import ReferenceStore
from schemas.catalogue import CHECKPOINT_TOPIC, DEAD_LETTER_TOPIC, INDICATOR_TOPIC, valid_topic
from schemas.families import FAMILIES
from schemas.local_calendar import ZoneCalendar
from streams.app import bytes_topic
from streams.indicators.checkpoints import CheckpointReader, checkpoint_key
from streams.indicators.closed_windows_rocksdb import PartitionGone, open_closed_windows
from streams.indicators.engine import Ack, IndicatorPartition, KeyValue, Publication, ValidRecord
from streams.indicators.flush_timings import FlushTimings
from streams.indicators.update_producer import UpdateProducer
from streams.worker_config import WorkerConfig
from streams.worker_health import WorkerHealth

log = logging.getLogger(__name__)
SLOW_FLUSH_SECONDS = 2.0
CHECKPOINT_RETRY_SECONDS = 1.0
LAST_FLUSH_SECONDS = 5.0
"""How long the stop waits for the last flush and checkpoint: a stop takes seconds, not minutes."""

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


async def read_checkpoints(reader: CheckpointReader) -> dict[bytes, bytes]:
    """The latest checkpoints, waiting for Kafka while it is away: a partition cannot be
    counted before its state is restored, and an outage is no reason for the agent to die."""
    waited = 0.0
    while True:
        try:
            return await reader.read()
        except KafkaError as exc:
            if waited == 0.0 or waited >= 30.0:
                log.warning("indicator checkpoints unreadable (%r): retrying until Kafka answers", exc)
                waited = 0.0
            await asyncio.sleep(CHECKPOINT_RETRY_SECONDS)
            waited += CHECKPOINT_RETRY_SECONDS


def register_indicator_agent(
    app: faust.App,
    config: WorkerConfig,
    store: ReferenceStore,
    counters: Counter[str],
    health: WorkerHealth,
    timings: FlushTimings,
) -> None:
    """Attach the indicator agent; ``counters`` tally outcomes for the worker's /counters page,
    ``health`` learns of its loops' rounds and deaths (streams/worker_health.py), ``timings``
    of each flush's phases (/metrics)."""
    source = bytes_topic(app, *[valid_topic(name) for name in FAMILIES])
    update_producer = UpdateProducer(config.kafka, INDICATOR_TOPIC)
    dead_topic = bytes_topic(app, DEAD_LETTER_TOPIC)
    checkpoint_topic = bytes_topic(app, CHECKPOINT_TOPIC)
    engines: dict[tuple[str, int], IndicatorPartition[Any]] = {}
    # Partitions whose checkpoint is being read, by the first record or by their assignment.
    restoring: dict[tuple[str, int], asyncio.Future[IndicatorPartition[Any]]] = {}
    source_topics = {valid_topic(name) for name in FAMILIES}
    checkpoint_reader = CheckpointReader(config.kafka)
    zone = ZoneCalendar(config.time_zone)  # one per worker: it caches where days begin

    reading = asyncio.Lock()
    # The last read of the checkpoints: when it began, what it found.
    read_began, checkpoints = -math.inf, dict[bytes, bytes]()

    async def checkpoints_read_after(asked: float) -> dict[bytes, bytes]:
        """The checkpoints as of a read begun after ``asked``: the dozens of partitions a
        rebalance assigns at once share one read, and none reads a checkpoint older than its
        assignment (its previous owner's last one is in Kafka by then)."""
        nonlocal read_began, checkpoints
        async with reading:
            if read_began < asked:
                read_began = time.monotonic()
                checkpoints = await read_checkpoints(checkpoint_reader)
            return checkpoints

    async def restore(tp: tuple[str, int]) -> IndicatorPartition[Any]:
        # The store first: its previous owner, which may still be writing checkpoints, holds it
        # until it lets the partition go; the checkpoint read after that is its last.
        me = asyncio.current_task()
        store = await open_closed_windows(config.store_dir, *tp, wanted=lambda: restoring.get(tp) is me)
        try:
            saved = (await checkpoints_read_after(time.monotonic())).get(checkpoint_key(*tp))
            engine: IndicatorPartition[Any] = IndicatorPartition(
                *tp,
                saved,
                grace_seconds=config.grace_seconds,
                checkpoint_seconds=config.checkpoint_seconds,
                idle_close_seconds=config.idle_close_seconds,
                store=store,
                zone=zone,
            )
        except BaseException:
            store.close()
            raise
        log.info("indicator state of %s[%d] restored up to offset %d", *tp, engine.state.offset)
        return engine

    def restoring_of(tp: tuple[str, int]) -> asyncio.Future[IndicatorPartition[Any]]:
        pending = restoring.get(tp)
        if pending is None:
            pending = restoring[tp] = asyncio.ensure_future(restore(tp))
            pending.add_done_callback(lambda done: install(tp, done))
        return pending

    def install(tp: tuple[str, int], done: asyncio.Future[IndicatorPartition[Any]]) -> None:
        """A restored engine starts counting and flushing unless its partition was revoked
        meanwhile (``restoring`` forgot it then): a revoked partition's engine would flush,
        and checkpoint a quiet move, over its next owner's state."""
        if restoring.get(tp) is not done:
            if not done.cancelled() and done.exception() is None:
                done.result().close()  # its store goes to the partition's next owner
            return
        del restoring[tp]
        if done.cancelled():
            return
        if (error := done.exception()) is not None:  # the partition's next record raises it again
            log.error("indicator state of %s[%d] not restored: %r", *tp, error)
            return
        engines[tp] = done.result()

    async def engine_for(tp: tuple[str, int]) -> IndicatorPartition[Any] | None:
        """The partition's engine; None if the partition was revoked while its store was
        awaited (its record is not ours: its next owner reads it)."""
        engine = engines.get(tp)
        if engine is None:
            # A record of a partition revoked meanwhile counts in an engine nobody flushes:
            # never checkpointed nor acknowledged, its next owner reads it again.
            try:
                engine = await asyncio.shield(restoring_of(tp))
            except PartitionGone:
                return None
        return engine

    @app.on_partitions_assigned.connect  # type: ignore[arg-type]
    async def restore_assigned(sender: Any, *args: Any, **kwargs: Any) -> None:
        # Restored now rather than at their first record, in the background (the rebalance
        # goes on): a partition that receives nothing after a restart still closes its
        # windows when quiet (invariant 6 of engine.py).
        assigned = args[0] if args else kwargs.get("assigned", ())
        for tp in assigned:
            if tp.topic in source_topics and (tp.topic, tp.partition) not in engines:
                restoring_of((tp.topic, tp.partition))

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    async def forget_revoked(sender: Any, *args: Any, **kwargs: Any) -> None:
        # Another worker may take them: it restores from the last checkpoint.
        revoked = args[0] if args else kwargs.get("revoked", ())
        for tp in revoked:
            engine = engines.pop((tp.topic, tp.partition), None)
            if engine is not None:
                engine.close()  # its store: the next owner, maybe another worker here, opens it
            restoring.pop((tp.topic, tp.partition), None)

    async def to_dead_letters(key: bytes, value: bytes) -> Awaitable[object]:
        return await dead_topic.send(key=key, value=value)

    flushing = asyncio.Lock()  # the timer's flush and the last one, on the way out

    async def flush(checkpoint_now: bool) -> int:
        """One flush of every partition; how many checkpoints it wrote."""
        written = 0
        async with flushing:
            now, reference, clock = datetime.now(UTC), store.current(), time.monotonic()
            # On the way out every pending record is checkpointed, due or not.
            flushed: list[tuple[tuple[str, int], IndicatorPartition[Any], Publication[Any]]] = [
                (tp, engine, engine.flush(now, clock, reference, checkpoint_now=checkpoint_now))
                for tp, engine in list(engines.items())
            ]
            computed = time.monotonic()
            timings.windows(
                sum(len(engine.state.windows.open) for engine in engines.values()),
                sum(engine.state.windows.closed_by_last_flush for _, engine, _ in flushed),
            )
            # Everything the checkpoints cover in Kafka first: a crash in between would restore a
            # state whose updates or dead letters nobody received.
            updates = [update for _, _, p in flushed for update in p.updates]
            letters = [letter for _, _, p in flushed for letter in p.dead_letters]
            await asyncio.gather(
                update_producer.deliver(updates), deliver_dead_letters(letters, to_dead_letters, counters)
            )
            delivered = time.monotonic()
            timings.observe("compute", computed - clock)
            timings.observe("deliver", delivered - computed)
            if delivered - clock > SLOW_FLUSH_SECONDS:
                log.warning(
                    "slow flush: %d updates and %d dead letters, %.1f s computing, then %.1f s "
                    "until Kafka had them",
                    len(updates), len(letters), computed - clock, delivered - computed,
                )  # fmt: skip
            for tp, engine, publication in flushed:
                if publication.checkpoint is None or engines.get(tp) is not engine:
                    continue  # revoked meanwhile: its next owner restores from the last checkpoint
                key, blob = publication.checkpoint
                await (await checkpoint_topic.send(key=key, value=blob))
                written += 1
                if engines.get(tp) is not engine:
                    continue  # revoked while the checkpoint travelled: its records are no longer ours
                engine.checkpoint_delivered()
                for event in publication.acks:
                    event.ack()
            timings.observe("checkpoint", time.monotonic() - delivered)
        return written

    @app.timer(interval=config.flush_seconds)
    async def publish_indicator_updates() -> None:
        if health.failed:
            return  # the worker is stopping (streams/worker_health.py); no flush after a death
        try:
            await flush(checkpoint_now=False)
        except Exception as exc:
            # Not raised again: faust would crash the app while the stop is under way, two stops
            # at once; the death stops the worker and sets its status.
            health.loop_died("indicator flush", exc)
            return
        health.round_done("indicator flush")

    @app.on_before_shutdown.connect  # type: ignore[arg-type]
    async def checkpoint_on_the_way_out(sender: Any, **kwargs: Any) -> None:
        if health.failed:
            return  # the state may be what failed: the next start restores the last checkpoint
        try:
            written = await asyncio.wait_for(flush(checkpoint_now=True), LAST_FLUSH_SECONDS)
        except Exception as exc:  # TimeoutError included: stopping matters more, nothing is acked
            log.warning(
                "the last checkpoint was not written (%r): the next start reads again from the one before",
                exc,
            )
        else:
            log.info(
                "indicator state checkpointed for %d partitions on the way out (%d had nothing new "
                "since their last checkpoint)",
                written, len(engines) - written,
            )  # fmt: skip
        finally:
            await update_producer.stop()
            for engine in engines.values():
                engine.close()
            engines.clear()  # a flush after this one finds nothing to do

    @app.agent(source)
    async def compute_indicators(stream: faust.StreamT[bytes]) -> AsyncIterator[None]:
        # noack: an event is acknowledged once a delivered checkpoint includes it.
        try:
            async for event in stream.noack().events():  # type: ignore[attr-defined]
                message = event.message
                engine = await engine_for((message.topic, message.partition))
                if engine is None:
                    yield None
                    continue
                record = ValidRecord(
                    message.topic,
                    message.partition,
                    message.offset,
                    message.key,
                    message.value,
                    message.headers,
                )
                applied = engine.apply(record, store.current(), datetime.now(UTC), event)
                counters.update(applied.counters)
                if applied.ack is Ack.NOW:
                    event.ack()
                yield None
        except Exception as exc:
            health.loop_died("indicator agent", exc)
            raise
