"""Points between Kafka and InfluxDB: in memory up to a bound, then on disk, oldest first.

Memory holds the newest points, coalesced by point key (a later revision of a window
replaces the earlier one, as InfluxDB would), and never more than ``memory_limit_bytes``:
before a point would cross the bound, everything in memory moves to a new disk segment.
Disk segments are therefore always older than memory and are written first, which keeps
"the last update wins" true across memory, disk and restarts.

Kafka positions: everything consumed is either in memory (lost on a crash, so not
committable: Kafka redelivers it) or on disk / in InfluxDB (committable). Hence the two
moments a position becomes committable: a spill, and a successful write of memory.
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


@dataclass
class PointBuffer:
    spool: DiskSpool
    memory_limit_bytes: int
    memory: dict[str, str] = field(default_factory=dict)
    memory_bytes: int = 0
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
        for point in lines:
            cost = len(point.key) + len(point.line) + ENTRY_OVERHEAD_BYTES
            previous = memory.get(point.key)
            if previous is not None:
                cost -= len(point.key) + len(previous) + ENTRY_OVERHEAD_BYTES
            elif self.memory_bytes + cost > self.memory_limit_bytes and memory:
                self.spill()
                memory = self.memory
            memory[point.key] = point.line
            self.memory_bytes += cost
            if self.memory_bytes > self.peak_memory_bytes:
                self.peak_memory_bytes = self.memory_bytes
        self.consumed[(topic, partition)] = next_offset

    def spill(self) -> None:
        """Move memory to a durable disk segment; what was consumed becomes committable."""
        if self.memory:
            self.spool.append(list(self.memory.values()))
            self.spills += 1
        self.memory = {}
        self.memory_bytes = 0
        self._advance(self.consumed)

    def take_memory(self) -> MemoryBatch:
        """Everything in memory, for a write; give it back with ``restore`` if the write fails."""
        batch = MemoryBatch(self.memory, dict(self.consumed))
        self.memory = {}
        self.memory_bytes = 0
        return batch

    def restore(self, batch: MemoryBatch) -> None:
        """Put back a batch InfluxDB did not take; newer lines added since win."""
        merged = {**batch.lines, **self.memory}
        self.memory = merged
        self.memory_bytes = sum(len(k) + len(v) + ENTRY_OVERHEAD_BYTES for k, v in merged.items())
        self.peak_memory_bytes = max(self.peak_memory_bytes, self.memory_bytes)
        if self.memory_bytes > self.memory_limit_bytes:
            self.spill()

    def written(self, batch: MemoryBatch) -> None:
        """InfluxDB accepted ``batch``: the positions it covers are committable."""
        self._advance(batch.positions)

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
