"""`zerocarbon sink`: indicator updates from Kafka to InfluxDB (and retained MQTT), losing none.

One loop: read ``zc.indicators`` → line protocol (sinks/update_reader.py) → ``PointBuffer``
(memory, then disk) → start a write of the oldest buffered points when due → commit the
Kafka positions that became durable. Writes run as tasks while the loop keeps reading the next batch, up to
``WRITES_IN_FLIGHT`` at once (the buffer keeps their points disjoint); once a batch's worth
waits in memory and no write may start, the loop waits for a write to end (Kafka holds
the rest: spilling to disk is for an absent InfluxDB, not a slow one). While
InfluxDB is away the loop keeps reading and buffering, and retries with backoff; a restart
resumes from the disk spool and the committed positions. One sink process per deployment:
two would race to write the same series (a second one refuses to start: sinks/one_sink.py).

The disk is written in a thread (``SpoolWriter``): points read while a spill is on its way
wait outside the buffer (``_unadmitted``, one batch at most) and the loop reads no more
until they are in. When the disk refuses (full, or ``ZC_SINK_SPOOL_MAX_BYTES``), the
consumer's partitions are paused until a spill lands or writes to InfluxDB make room.
A loop that dies leaves its reason in the status file (``failed``) and ends ``run``.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import resource
import time
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError
from aiokafka.structs import OffsetAndMetadata

from config.prometheus_metrics import metrics_registry, metrics_server
from config.status_files import write_status
from schemas.catalogue import INDICATOR_TOPIC
from schemas.dead_letter import FieldProblem, Origin
from schemas.indicator import IndicatorUpdate
from sinks.collector_pacing import paced_collector
from sinks.disk_spool import DiskSpool, Segment
from sinks.influx_line_writer import InfluxLineWriter, InfluxUnavailable, Rejected, backoff_delay
from sinks.mqtt_retained import RetainedPublisher
from sinks.point_buffer import MemoryBatch, PointBuffer, Positions
from sinks.sink_config import SinkConfig
from sinks.sink_metrics import SINK_METRICS, metrics_snapshot
from sinks.spool_writer import DISK_BUFFER_FULL, SpoolWriter
from sinks.update_reader import SEPARATOR, SinkCounters, UpdateReader, send_dead_letter

log = logging.getLogger(__name__)
# Two requests at once keep InfluxDB busy while the sink parses and a response waits for
# the loop; serial writes left the sink at 42-48 % of InfluxDB's raw rate (bench/README.md).
WRITES_IN_FLIGHT = 2
# While reading is paused, how often the ends of the partitions are asked (for the lag).
ASK_ENDS_EVERY_SECONDS = 5.0


def by_bucket(lines: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for entry in lines:
        bucket, _, line = entry.partition(SEPARATOR)
        out.setdefault(bucket, []).append(line)
    return out


class IndicatorSink:
    def __init__(self, config: SinkConfig, name: str = "influx-sink", topic: str = INDICATOR_TOPIC) -> None:
        self.config = config
        self.name = name
        self.topic = topic
        self.status_path = config.status_dir / f"{name}.status.json"
        self.buffer = PointBuffer(
            DiskSpool(config.spool_dir, config.spool_max_bytes), config.memory_limit_bytes
        )
        self.spools = SpoolWriter(self.buffer, config.max_backoff_seconds)
        # Points read from Kafka that the buffer has not taken yet (a spill on its way, or the
        # disk refusing): in order; the loop reads nothing more until they are in.
        self._unadmitted: list[tuple[TopicPartition, dict[str, str], int]] = []
        self._paused = False
        self.failed: str | None = None  # why a loop of this process died: the status says failing
        self.counters = SinkCounters()
        self._attempt = 0
        self._next_write_at = 0.0
        self._last_write = time.monotonic()
        self._influx_ok: bool | None = None
        self._kafka_ready = False
        self._caught_up = False
        self._retained: RetainedPublisher | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._read_up_to: dict[TopicPartition, int] = {}  # the next offset to read, per partition
        # Ends asked while reading is paused: fetches, whose high watermarks give the lag, stop.
        self._asked_ends: dict[TopicPartition, int] = {}
        self._ends_asked_at = -math.inf
        self._metrics_port: int | None = None

        self.reader = UpdateReader(config, self.counters)

    def readiness(self) -> dict[str, bool]:
        """``/ready``: reading Kafka, InfluxDB accepting writes (its last write did not fail: an
        idle sink that has written nothing yet is ready), the disk buffer not full."""
        status = metrics_snapshot(self.status())
        return {
            "kafka_ready": bool(status.get("kafka_ready")),
            "influxdb_up": status.get("influx_ok") is not False,
            "reading": not status["reading_paused"],
        }

    async def run(self, stop: asyncio.Event) -> None:
        """Read, buffer, write and commit until ``stop`` is set (collector paced for records).
        An error that ends the loop is raised again, after the status file says it."""
        try:
            registry = metrics_registry(SINK_METRICS, lambda: metrics_snapshot(self.status()))
            async with metrics_server(registry, self.config.metrics, self.readiness) as port:
                self._metrics_port = port
                with paced_collector():
                    await self._run(stop)
        except Exception as exc:
            self.loop_died("sink", exc)
            raise

    @property
    def drained(self) -> bool:
        """Nothing read waits anywhere: every point read is in InfluxDB (or dead-lettered)."""
        b = self.buffer
        return b.empty and not b.writing and not self._unadmitted

    def loop_died(self, loop: str, exc: BaseException) -> None:
        """Say in the status file that a loop of the sink process died (its own, or one run beside it)."""
        if self.failed is None:
            self.failed = f"{loop}: {exc!r}"
            log.error("the %s loop died (%r): the sink stops", loop, exc)
        self._kafka_ready = False
        self._write_status()

    async def _run(self, stop: asyncio.Event) -> None:
        s = self.config
        consumer = AIOKafkaConsumer(
            self.topic,
            **s.kafka.client_options(),
            group_id=s.group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_partition_fetch_bytes=4 * 1024 * 1024,
        )
        producer = AIOKafkaProducer(**s.kafka.client_options(), acks="all", enable_idempotence=True)
        retained = (
            RetainedPublisher(
                s.mqtt_host,
                s.mqtt_port,
                s.mqtt_topic_root,
                f"zerocarbon-{self.name}",
                s.mqtt_login,
                ca_file=s.mqtt_ca_file,
            )
            if s.mqtt_retained
            else None
        )
        self._retained = retained
        self._consumer, self._read_up_to = consumer, {}
        writes: list[asyncio.Task[None]] = []
        commit: asyncio.Task[None] | None = None
        await consumer.start()
        await producer.start()
        self._kafka_ready = True
        log.info(
            "sink ready: %s -> InfluxDB %s (spool %s, %d points on disk)",
            self.topic, s.influx.url, self.buffer.spool.folder, self.buffer.spool.point_count,
        )  # fmt: skip
        try:
            async with InfluxLineWriter(s) as writer:
                status_at = 0.0
                while not stop.is_set():
                    for write in [w for w in writes if w.done()]:
                        write.result()  # _write keeps InfluxDB's and Kafka's errors; others are bugs
                        writes.remove(write)
                    self._admit()
                    spilling = self.spools.start()
                    started = None
                    if len(writes) < WRITES_IN_FLIGHT and self._write_due():
                        started = self._start_write(writer, producer)
                    waitable = [*writes, *([spilling] if spilling is not None else [])]
                    if started is not None:
                        writes.append(started)
                        await asyncio.sleep(0)  # let it send its request before the loop parses on
                    elif self._unadmitted:
                        await self._wait_for_room(consumer, waitable)
                    elif writes and (
                        len(self.buffer.memory) >= s.batch_size or (self._caught_up and self._buffered())
                    ):
                        # A batch waits and no write may start: let Kafka hold the rest. Caught
                        # up, points (in memory or on disk) wait for a write to end rather than
                        # for getmany's timeout. Writes that outlast the flush interval let the
                        # loop read (and spill) again.
                        done, _ = await asyncio.wait(
                            waitable, timeout=s.flush_interval_seconds, return_when=asyncio.FIRST_COMPLETED
                        )
                        if done:
                            continue  # start the next write before reading more
                    if not self._unadmitted:
                        self._resume_reading(consumer)
                        # Caught up with points waiting behind a running write: look at Kafka
                        # without waiting, then wait for the write (above), not for getmany's
                        # timeout: a drained disk was written one segment per timeout.
                        behind_a_write = self._caught_up and writes and self._buffered()
                        batches = await consumer.getmany(
                            timeout_ms=0 if behind_a_write else int(s.flush_interval_seconds * 1000 / 2),
                            max_records=s.batch_size,
                        )
                        for tp, records in batches.items():
                            self._read_up_to[tp] = records[-1].offset + 1
                            latest = await self._take(tp, records, producer)
                            if retained is not None and latest:
                                retained.offer(latest)
                        self._admit()
                        # Fewer records than asked: Kafka has no more for now; waiting would only add latency.
                        self._caught_up = sum(map(len, batches.values())) < s.batch_size
                    if commit is None or commit.done():
                        if commit is not None:
                            commit.result()  # failures are logged there; others are bugs
                        # One commit at a time, in the background: a round trip to the group
                        # coordinator (10-25 ms) per batch would otherwise stall the reading.
                        commit = self._start_commit(consumer)
                    if time.monotonic() - status_at >= 1.0:
                        status_at = time.monotonic()
                        self._write_status()
                for task in [*writes, commit]:
                    if task is not None:
                        await task
                while (spill := self.spools.start()) is not None:
                    await spill  # a spill's thread cannot be cancelled: let it land
                writes, commit = [], None
                # Leave with as little as possible in memory: it is re-read from Kafka anyway,
                # but one last write spares the work.
                if self.buffer.memory and self._influx_ok and (last := self._start_write(writer, producer)):
                    await last
                await self._commit(consumer)
        finally:
            for task in [*writes, commit]:
                if task is not None:  # a write's batch stays in flight, never committed: Kafka redelivers it
                    task.cancel()
            self._kafka_ready = False
            self._write_status()
            if retained is not None:
                retained.close()
            await consumer.stop()
            await producer.stop()

    async def _take(
        self, tp: TopicPartition, records: list[Any], producer: AIOKafkaProducer
    ) -> dict[str, IndicatorUpdate]:
        """Read a partition's records into the points waiting for the buffer; return the newest
        update per retained MQTT topic."""
        points, latest = await self.reader.read(tp, records, producer)
        self._unadmitted.append((tp, points, records[-1].offset + 1))
        return latest

    def _buffered(self) -> bool:
        """Points wait in memory or on disk for a write."""
        return bool(self.buffer.memory) or len(self.buffer.spool) > 0

    def _admit(self) -> None:
        """Into the buffer, in order, the points read that it takes now (the rest waits)."""
        while self._unadmitted:
            tp, points, next_offset = self._unadmitted[0]
            left = self.buffer.add(
                points, tp.topic, tp.partition, next_offset, may_spill=self.spools.may_spill()
            )
            if left:
                self._unadmitted[0] = (tp, left, next_offset)
                return
            del self._unadmitted[0]

    async def _wait_for_room(self, consumer: AIOKafkaConsumer, waitable: list[asyncio.Task[None]]) -> None:
        """The buffer is full: a spill is on its way, or the disk refused one. Kafka keeps what
        follows; wait for the disk, a write, or the next attempt at the disk."""
        timeout = self.config.flush_interval_seconds / 2
        if self.spools.refused is not None:
            self._pause_reading(consumer)
            if self.spools.task is None:
                timeout = min(timeout, self.spools.seconds_to_retry())
        if waitable:
            await asyncio.wait(waitable, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        else:
            await asyncio.sleep(timeout)
        if self._paused:
            await consumer.getmany(timeout_ms=0)  # nothing (paused), but the group sees the sink poll
            await self._ask_ends(consumer)

    async def _ask_ends(self, consumer: AIOKafkaConsumer) -> None:
        """Paused, the sink fetches nothing and the fetches' high watermarks stand still: its lag
        would read constant while Kafka keeps all it cannot take (ZcConsumerLagGrowing blind).
        Ask the ends instead, every few seconds."""
        if time.monotonic() - self._ends_asked_at < ASK_ENDS_EVERY_SECONDS:
            return
        self._ends_asked_at = time.monotonic()
        assigned = list(consumer.assignment())
        if not assigned:
            return
        try:
            ends = await asyncio.wait_for(consumer.end_offsets(assigned), ASK_ENDS_EVERY_SECONDS)
            unread = [tp for tp in assigned if tp not in self._read_up_to]
            if unread:
                starts = await asyncio.wait_for(
                    self._group_positions(consumer, unread), ASK_ENDS_EVERY_SECONDS
                )
                self._read_up_to.update(starts)
        except (KafkaError, TimeoutError) as exc:
            log.debug("the ends of %s not known (%r): the lag reads as of the last fetch", self.topic, exc)
            return
        self._asked_ends.update(ends)

    @staticmethod
    async def _group_positions(
        consumer: AIOKafkaConsumer, partitions: list[TopicPartition]
    ) -> dict[TopicPartition, int]:
        """Where the group would read ``partitions`` from, which the sink never fetched (paused
        before any record of theirs came): its committed offset, or the partition's beginning
        (``auto_offset_reset="earliest"``). Without it their lag was missing from /metrics."""
        positions = {tp: await consumer.committed(tp) for tp in partitions}
        never = [tp for tp, offset in positions.items() if offset is None]
        firsts = await consumer.beginning_offsets(never) if never else {}
        return {tp: offset if offset is not None else firsts[tp] for tp, offset in positions.items()}

    def _pause_reading(self, consumer: AIOKafkaConsumer) -> None:
        """While the disk refuses spills, Kafka keeps every record the buffer cannot hold."""
        # Every call: partitions assigned by a rebalance meanwhile are paused too.
        consumer.pause(*consumer.assignment())
        self._paused = True

    def _resume_reading(self, consumer: AIOKafkaConsumer) -> None:
        if self._paused:
            consumer.resume(*consumer.assignment())
            self._paused = False  # said once, at the end of the refusal (SpoolWriter), not at every resume

    def _write_due(self) -> bool:
        now = time.monotonic()
        if self.buffer.empty or now < self._next_write_at:
            return False
        return (
            len(self.buffer.spool) > 0
            or bool(self._unadmitted)  # memory is full: writing it is what makes room
            or len(self.buffer.memory) >= self.config.batch_size
            or (self._caught_up and bool(self.buffer.memory))
            or now - self._last_write >= self.config.flush_interval_seconds
        )

    def _start_write(self, writer: InfluxLineWriter, producer: AIOKafkaProducer) -> asyncio.Task[None] | None:
        """A task writing the oldest buffered points the buffer lets go now (``take_write``), if any.

        What it writes is taken now, before the loop reads on, so the task's batch is fixed
        and what the loop reads meanwhile waits in memory for the next write.
        """
        taken = self.buffer.take_write()
        return asyncio.create_task(self._write(writer, producer, taken)) if taken is not None else None

    async def _write(
        self, writer: InfluxLineWriter, producer: AIOKafkaProducer, taken: Segment | MemoryBatch
    ) -> None:
        spool = self.buffer.spool
        c = self.counters
        # A segment is read in a thread: a few MB from a busy disk must not stop the loop.
        if isinstance(taken, Segment):
            lines = await asyncio.to_thread(spool.read_lines, taken)
        else:
            lines = list(taken.lines.values())
        started = time.monotonic()
        try:
            rejected: list[Rejected] = []
            for bucket, bucket_lines in by_bucket(lines).items():
                rejected += await writer.write(bucket, bucket_lines)
                c.write_requests += -(-len(bucket_lines) // self.config.batch_size)
            for refused in rejected:
                await self._dead_letter_point(refused, producer)
        except (InfluxUnavailable, KafkaError) as exc:
            self.buffer.restore(taken)
            retry_after = exc.retry_after if isinstance(exc, InfluxUnavailable) else None
            delay = backoff_delay(self._attempt, 0.5, self.config.max_backoff_seconds, retry_after)
            self._attempt += 1
            self._next_write_at = time.monotonic() + delay
            self._influx_ok = False
            c.retries += 1
            c.last_error = str(exc)
            log.warning("%s; %d points kept, next attempt in %.1fs", exc, len(lines), delay)
            return
        c.latency.record(time.monotonic() - started)
        c.points_written += len(lines) - len(rejected)
        c.rejected += len(rejected)
        if isinstance(taken, Segment):
            await asyncio.to_thread(spool.delete, taken)
            self.spools.room_freed()
        self.buffer.written(taken)
        if self._influx_ok is False:
            log.info(
                "InfluxDB is back: writing what was buffered (%d points on disk)",
                self.buffer.spool.point_count,
            )
        self._influx_ok = True
        self._attempt = 0
        self._next_write_at = 0.0
        self._last_write = time.monotonic()

    async def _dead_letter_point(self, refused: Rejected, producer: AIOKafkaProducer) -> None:
        log.error("InfluxDB refused a point (%s %s): %s", refused.status, refused.message, refused.line)
        problem = FieldProblem(path="line", type=f"influxdb_{refused.status}", message=refused.message)
        origin = Origin(transport="kafka", topic=INDICATOR_TOPIC)
        await send_dead_letter(producer, refused.line.encode(), [problem], origin)

    def _start_commit(self, consumer: AIOKafkaConsumer) -> asyncio.Task[None] | None:
        """A task committing what became durable since the last commit, if anything did."""
        positions = self.buffer.take_committable()
        return asyncio.create_task(self._commit_positions(consumer, positions)) if positions else None

    async def _commit(self, consumer: AIOKafkaConsumer) -> None:
        if positions := self.buffer.take_committable():
            await self._commit_positions(consumer, positions)

    async def _commit_positions(self, consumer: AIOKafkaConsumer, positions: Positions) -> None:
        offsets = {TopicPartition(t, p): OffsetAndMetadata(o, "") for (t, p), o in positions.items()}
        try:
            await consumer.commit(offsets)
        except (CommitFailedError, KafkaError) as exc:
            # Not lost: the points are durable; Kafka will redeliver and they are rewritten.
            log.warning("commit of %s failed (%r)", positions, exc)

    def _write_status(self) -> None:
        write_status(self.status_path, self.status())

    def status(self) -> dict[str, Any]:
        """The status file's figures, which /metrics serves too (sinks/sink_metrics.py)."""
        c, b, retained = self.counters, self.buffer, self._retained
        return {
                "name": self.name,
                "pid": os.getpid(),
                "metrics_port": self._metrics_port,
                "kafka_ready": self._kafka_ready,
                "failed": self.failed,
                # Why the sink reads no more from Kafka, if it does not (None: it reads).
                "reading_paused_by": DISK_BUFFER_FULL if self._paused else None,
                "disk_buffer_error": self.spools.refused,
                "lines_formatted_by": self.reader.lines_by,
                "influx_ok": self._influx_ok,
                "records": c.records,
                "tombstones": c.tombstones,
                "unreadable_dead_lettered": c.unreadable,
                "points_in": c.points_in,
                "points_written": c.points_written,
                "write_requests": c.write_requests,
                "retries": c.retries,
                "rejected_dead_lettered": c.rejected,
                "last_error": c.last_error,
                "write_latency_seconds": c.latency.summary(),
                "buffered_memory_points": len(b.memory),
                "buffered_memory_bytes": b.memory_bytes,
                "peak_memory_bytes": b.peak_memory_bytes,
                "memory_limit_bytes": b.memory_limit_bytes,
                "buffered_disk_points": b.spool.point_count,
                "buffered_disk_bytes": b.spool.size_bytes,
                "disk_segments": len(b.spool),
                "disk_limit_bytes": b.spool.max_bytes,
                "spills": b.spills,
                "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                "mqtt_retained_published": retained.published if retained else 0,
                "mqtt_retained_skipped": retained.skipped if retained else 0,
                "mqtt_connected": retained.connected if retained else None,
                # Mosquitto's own figures, from $SYS (sinks/broker_queue.py); None until heard.
                "mqtt_broker_stored_messages": retained.broker.get("stored_messages") if retained else None,
                "mqtt_broker_stored_bytes": retained.broker.get("stored_bytes") if retained else None,
                "mqtt_broker_dropped_messages": retained.broker.get("dropped_messages") if retained else None,
                "mqtt_queue_limit_messages": self.config.mqtt_queue_limit_messages or None,
                "mqtt_queue_limit_bytes": self.config.mqtt_queue_limit_bytes or None,
                "kafka_lag": self._lag(),
        }  # fmt: skip

    def _lag(self) -> dict[str, int]:
        """Records behind the end of each partition read so far: as of the last fetch or, while
        reading is paused, of the ends asked."""
        consumer, lag = self._consumer, dict[str, int]()
        if consumer is None:
            return lag
        for tp, read in self._read_up_to.items():
            end = max(consumer.highwater(tp) or -1, self._asked_ends.get(tp, -1))
            if end >= 0:
                lag[str(tp.partition)] = max(0, end - read)
        return lag


def read_sink_statuses(status_dir: Path) -> list[dict[str, Any]]:
    """Every sink's status file in ``status_dir`` (``SinkConfig.status_dir``)."""
    from config.status_files import read_status_files

    return read_status_files(status_dir)
