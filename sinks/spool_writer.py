"""The buffer's spills written to disk off the event loop, and the disk's refusals as state.

A spill's write, fsync, rename and folder fsync take milliseconds to seconds on a busy disk:
on the loop they froze the sink (its writes to InfluxDB, its commits, its status) exactly
while InfluxDB was away. Here they run in a thread; the loop settles the buffer when they
end. A refused spill (a full disk, a quota, the spool's size limit: any ``OSError``) gives
its lines back to memory and makes the spool *refused*: the sink stops reading Kafka and
retries after a backoff, or sooner when a segment written to InfluxDB frees room.
"""

from __future__ import annotations

import asyncio
import logging
import time

from sinks.disk_spool import SpoolFull
from sinks.influx_line_writer import backoff_delay
from sinks.point_buffer import PointBuffer, Spill

log = logging.getLogger(__name__)

DISK_BUFFER_FULL = "disk_buffer_full"  # the status's name for the condition


class SpoolWriter:
    """One spill at a time, in a thread; ``refused`` says why the disk takes none now."""

    def __init__(self, buffer: PointBuffer, max_backoff_seconds: float) -> None:
        self.buffer = buffer
        self.max_backoff_seconds = max_backoff_seconds
        self.task: asyncio.Task[None] | None = None
        self.refused: str | None = None  # the last refusal, until the disk has room again
        self._limit_refused = False
        self._refused_bytes = 0  # the segment the size limit refused last
        self.refusals = 0
        self._retry_at = 0.0

    def may_spill(self) -> bool:
        """Whether ``PointBuffer.add`` may begin a spill now (not while the disk is backing off)."""
        return self.refused is None or time.monotonic() >= self._retry_at

    def seconds_to_retry(self) -> float:
        return max(0.0, self._retry_at - time.monotonic()) if self.refused else 0.0

    def room_freed(self) -> None:
        """A segment left the disk: try the next spill at once; an empty spool ends a refusal."""
        self._retry_at = 0.0
        if self.refused is not None and not len(self.buffer.spool):
            self._recovered("InfluxDB took every segment")

    def start(self) -> asyncio.Task[None] | None:
        """A task writing the buffer's spill, if one waits and none runs; the running one else."""
        if self.task is not None and self.task.done():
            self.task.result()  # refusals are handled in _write; anything else is a bug: raise
            self.task = None
        if self.task is None and self.buffer.spilling is not None:
            self.task = asyncio.create_task(self._write(self.buffer.spilling))
        return self.task

    async def _write(self, spill: Spill) -> None:
        spool = self.buffer.spool
        try:
            segment = await asyncio.to_thread(spool.write, spill.lines)
        except OSError as exc:
            self.buffer.spill_failed(spill)
            self._refused(exc, len(spill.lines))
            return
        self.buffer.spilled(spill, segment)
        if self.refused is not None:
            self.refusals, self._retry_at = 0, 0.0  # the disk takes segments: no more backing off
            if self._has_room():
                self._recovered("it took a segment again")

    def _has_room(self) -> bool:
        """Back below half its size limit, with room for the segment it refused, when the limit
        refused: a refusal ends there, not at every segment that squeezes in as InfluxDB drains
        another, which made the refusal and the recovery alternate at each segment (1 047 times
        in one CI run, an ERROR each); nor at a small segment that fits while the refused one
        would not (a spill larger than half the limit). A full disk ends at the first segment it
        takes again."""
        limit = self.buffer.spool.max_bytes
        if not self._limit_refused or limit is None:
            return True
        needed = max(limit // 2, min(self._refused_bytes, limit))
        return limit - self.buffer.spool.size_bytes >= needed

    def _recovered(self, why: str) -> None:
        log.warning(
            "the disk buffer %s has room again (%s): the sink reads Kafka as usual",
            self.buffer.spool.folder,
            why,
        )
        self.refused = None
        self.refusals = 0

    def _refused(self, exc: OSError, points: int) -> None:
        delay = backoff_delay(self.refusals, 0.5, self.max_backoff_seconds)
        self.refusals += 1
        self._retry_at = time.monotonic() + delay
        if self.refused is None:  # once per episode: the status keeps saying it meanwhile
            log.error(
                "the disk buffer %s refused %d points (%s): the sink stops reading Kafka (Kafka keeps "
                "the rest, nothing is lost or committed past what is durable) and keeps writing to "
                "InfluxDB; it reads on when there is room. Free space on that disk or raise "
                "ZC_SINK_SPOOL_MAX_BYTES, and bring InfluxDB back if it is away",
                self.buffer.spool.folder, points, exc,
            )  # fmt: skip
        self.refused = str(exc)
        self._limit_refused = isinstance(exc, SpoolFull)
        if isinstance(exc, SpoolFull):
            self._refused_bytes = exc.needed
