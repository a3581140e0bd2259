"""Points between Kafka and InfluxDB: in memory up to a bound, then on disk, oldest first.

Memory holds the newest points, coalesced by point key (a later revision of a window
replaces the earlier one, as InfluxDB would), and never more than ``memory_limit_bytes``:
before a point would cross the bound, everything in memory moves to a new disk segment.
Disk segments are therefore always older than memory and are written first, which keeps
"the last update wins" true across memory, disk and restarts.

Kafka positions: everything consumed is either in memory (lost on a crash, so not
committable: Kafka redelivers it) or on disk / in InfluxDB (committable). Hence the two
moments a position becomes committable: a spill, and a successful write of memory.

A write of memory runs while the sink keeps reading: the batch it took is "in flight",
neither in memory nor on disk, yet its positions are among those consumed. So a spill
during that write puts the in-flight lines on disk too (first, as they are older), else
the spill would make their positions committable with the lines nowhere durable; and the
bound counts the in-flight lines until they are on disk or written.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from sinks.disk_spool import DiskSpool
from sinks.line_protocol import IndicatorLine

# Accounted per point beside its characters: two str headers and a dict slot. An estimate
# of CPython's cost, so the bound holds for the process, not only for the text.
ENTRY_OVERHEAD_BYTES = 160

Positions = dict[tuple[str, int], int]


@dataclass
class MemoryBatch:
    """What a write of memory takes: the lines, and the positions that become committable."""

    lines: dict[str, str]
    positions: Positions
    size_bytes: int = 0
    # Set when a spill put these lines on disk while the write was in flight: a failed
    # write then has nothing to give back (the disk copy is written first, newer lines after).
    spilled: bool = False


@dataclass
class PointBuffer:
    spool: DiskSpool
    memory_limit_bytes: int
    memory: dict[str, str] = field(default_factory=dict)
    memory_bytes: int = 0
    # The memory batch a write took and has not settled (``written`` or ``restore``).
    in_flight: MemoryBatch | None = None
    peak_memory_bytes: int = 0
    spills: int = 0
    # Next offset to read per (topic, partition): advanced once a record's lines are added.
    consumed: Positions = field(default_factory=dict)
    # Positions that are durable (on disk or in InfluxDB) and not yet committed.
    committable: Positions = field(default_factory=dict)
    # The highest position ever made committable: a position never moves back, or an old
    # revision would be read again and overwrite a newer point.
    durable: Positions = field(default_factory=dict)

    def add(self, lines: Iterable[IndicatorLine], topic: str, partition: int, next_offset: int) -> None:
        """Buffer the lines of one Kafka record (or several of one partition)."""
        memory = self.memory
        room = self.memory_limit_bytes - self.in_flight_bytes  # what memory itself may hold now
        for key, line, _ in lines:
            cost = len(key) + len(line) + ENTRY_OVERHEAD_BYTES
            previous = memory.get(key)
            if previous is not None:
                cost -= len(key) + len(previous) + ENTRY_OVERHEAD_BYTES
            elif self.memory_bytes + cost > room and (memory or self.in_flight_bytes):
                self.peak_memory_bytes = max(self.peak_memory_bytes, self.held_bytes)
                self.spill()
                memory, room = self.memory, self.memory_limit_bytes
            memory[key] = line
            self.memory_bytes += cost
        held = self.held_bytes
        if held > self.peak_memory_bytes:
            self.peak_memory_bytes = held
        self.consumed[(topic, partition)] = next_offset

    @property
    def in_flight_bytes(self) -> int:
        batch = self.in_flight
        return batch.size_bytes if batch is not None and not batch.spilled else 0

    @property
    def held_bytes(self) -> int:
        """What the bound limits: memory and an in-flight batch not yet on disk."""
        return self.memory_bytes + self.in_flight_bytes

    def spill(self) -> None:
        """Memory, after any in-flight batch, to a durable segment: what was consumed becomes committable."""
        lines = self.memory
        batch = self.in_flight
        if batch is not None and not batch.spilled:
            lines = {**batch.lines, **lines}  # older first; a newer line of a point replaces it
            batch.spilled = True
        if lines:
            self.spool.append(list(lines.values()))
            self.spills += 1
        self.memory = {}
        self.memory_bytes = 0
        self._advance(self.consumed)

    def take_memory(self) -> MemoryBatch:
        """Everything in memory, for a write; settle it with ``written`` or ``restore``."""
        if self.in_flight is not None:
            raise RuntimeError("a memory batch is already being written: settle it first")
        batch = MemoryBatch(self.memory, dict(self.consumed), self.memory_bytes)
        self.in_flight = batch
        self.memory = {}
        self.memory_bytes = 0
        return batch

    def restore(self, batch: MemoryBatch) -> None:
        """Put back a batch InfluxDB did not take; newer lines added since win."""
        self._settle(batch)
        if batch.spilled:  # already on disk, ahead of memory: putting it back would undo newer lines
            return
        merged = {**batch.lines, **self.memory}
        self.memory = merged
        self.memory_bytes = sum(len(k) + len(v) + ENTRY_OVERHEAD_BYTES for k, v in merged.items())
        self.peak_memory_bytes = max(self.peak_memory_bytes, self.memory_bytes)
        if self.memory_bytes > self.memory_limit_bytes:
            self.spill()

    def written(self, batch: MemoryBatch) -> None:
        """InfluxDB accepted ``batch``: the positions it covers are committable."""
        self._settle(batch)
        self._advance(batch.positions)

    def _settle(self, batch: MemoryBatch) -> None:
        if batch is not self.in_flight:
            raise RuntimeError("settling a memory batch that is not the one in flight")
        self.in_flight = None

    def _advance(self, positions: Positions) -> None:
        for tp, offset in positions.items():
            if offset > self.durable.get(tp, -1):
                self.durable[tp] = offset
                self.committable[tp] = offset

    def take_committable(self) -> Positions:
        """The positions to commit now (each only once)."""
        out, self.committable = self.committable, {}
        return out

    @property
    def empty(self) -> bool:
        return not self.memory and not len(self.spool)
