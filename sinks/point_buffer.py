"""Points between Kafka and InfluxDB: in memory up to a bound, then on disk, oldest first.

Memory holds the newest points, coalesced by point key (a later revision of a window
replaces the earlier one, as InfluxDB would), and never more than ``memory_limit_bytes``:
before a point would cross the bound, everything in memory moves to a new disk segment.
Disk segments are therefore always older than memory and are written first, which keeps
"the last update wins" true across memory, disk and restarts.

Kafka positions: everything consumed is either in memory (lost on a crash, so not
committable: Kafka redelivers it) or on disk / in InfluxDB (committable). Hence the two
moments a position becomes committable: a spill, and a successful write of memory.

Writes run while the sink keeps reading, and two writes of memory may run at once (one
request alone leaves InfluxDB idle while the sink parses). ``take_write`` decides what
may be written now, so that an older revision of a point never lands after a newer one:
- a disk segment is written alone: nothing else starts before it is written;
- a memory batch may start beside running ones only if it shares no point key with
  them (requests in flight land in any order).
A batch taken from memory is "in flight", neither in memory nor on disk, yet its
positions are among those consumed. So a spill puts the in-flight lines on disk too
(first, as they are older), the bound counts them until they are on disk or written, and
a batch's positions become committable only once every older batch is written.

The disk is written off the event loop, so a spill has two moments. ``add`` *begins* it
when the bound is reached: memory and the in-flight lines move into ``spilling`` (still
counted by the bound: they are in the process until on disk) and ``add`` hands back the
points it did not take; the sink writes the spill in a thread, then settles it with
``spilled`` (on disk: what was read before it began is committable) or ``spill_failed``
(the disk refused: its lines go back to memory, the bound still holds, and the sink stops
reading Kafka until space returns). One spill at a time; while it runs no memory is
written (its lines are older than memory's and must land first), and a batch whose write
fails meanwhile waits with the spill: on disk with it, or back in memory if the disk refuses.

Invariants (tests/unit/test_sink_buffer.py, test_sink_concurrent_writes.py):
- ``held_bytes <= memory_limit_bytes``, but for one point larger than the bound alone;
- every position in ``durable`` covers only points on disk or in InfluxDB;
- InfluxDB never receives an older revision of a point after a newer one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import islice

from sinks.disk_spool import DiskSpool, Segment

# Accounted per point beside its characters: two str headers and a dict slot. An estimate
# of CPython's cost, so the bound holds for the process, not only for the text.
ENTRY_OVERHEAD_BYTES = 160

Positions = dict[tuple[str, int], int]


@dataclass(eq=False)  # a batch is itself, not its contents: settled by identity
class MemoryBatch:
    """What a write of memory takes: the lines, and the positions that become committable."""

    lines: dict[str, str]
    positions: Positions
    size_bytes: int = 0
    # Set when a spill put these lines on disk while the write was in flight: a failed
    # write then has nothing to give back (the disk copy is written first, newer lines after).
    spilled: bool = False
    # Written, waiting for an older batch before its positions may be committed.
    done: bool = False


@dataclass(eq=False)
class Spill:
    """Lines on their way to a disk segment: the in-flight batches' first, then memory's."""

    lines: list[str]
    positions: Positions  # what was read when it began: committable once it is on disk
    batches: list[MemoryBatch]  # the in-flight batches it covers (marked ``spilled``)
    memory: dict[str, str]  # what it took from memory: given back if the disk refuses
    memory_bytes: int
    # Batches among ``batches`` whose write failed while the spill ran: the spill holds their
    # only copy (given back to memory, oldest first, if the disk refuses).
    returned: list[MemoryBatch] = field(default_factory=list)

    @property
    def held_bytes(self) -> int:
        return self.memory_bytes + sum(b.size_bytes for b in self.batches)


@dataclass
class PointBuffer:
    spool: DiskSpool
    memory_limit_bytes: int
    memory: dict[str, str] = field(default_factory=dict)
    memory_bytes: int = 0
    # Memory batches being written and not yet settled (``written`` or ``restore``), oldest first.
    in_flight: list[MemoryBatch] = field(default_factory=list)
    # The disk segment being written, if any (nothing else is written meanwhile).
    segment_in_flight: Segment | None = None
    # The spill being written to disk, if any (begun by ``add``, settled by the sink).
    spilling: Spill | None = None
    peak_memory_bytes: int = 0
    spills: int = 0
    # Next offset to read per (topic, partition): advanced once a record's lines are added.
    consumed: Positions = field(default_factory=dict)
    # Positions that are durable (on disk or in InfluxDB) and not yet committed.
    committable: Positions = field(default_factory=dict)
    # The highest position ever made committable: a position never moves back, or an old
    # revision would be read again and overwrite a newer point.
    durable: Positions = field(default_factory=dict)

    def add(
        self, points: dict[str, str], topic: str, partition: int, next_offset: int, *, may_spill: bool = True
    ) -> dict[str, str]:
        """Buffer the points (key -> line) of one Kafka record, or of several of one partition.

        Returns the points not taken ({}: all taken, and the record's position is read).
        Points are left when the bound is reached: then a spill begins (unless one runs
        already, or ``may_spill`` is False: the disk refused the last one); call ``add``
        again with what is left once ``spilling`` is settled or memory was written."""
        cost = sum(map(len, points)) + sum(map(len, points.values())) + len(points) * ENTRY_OVERHEAD_BYTES
        if replaced := self.memory.keys() & points.keys():
            cost -= sum(len(k) + len(self.memory[k]) + ENTRY_OVERHEAD_BYTES for k in replaced)
        if self.held_bytes + cost <= self.memory_limit_bytes:
            # All of it fits: one C-level update instead of a Python step per point (0.2 µs).
            self.memory.update(points)
            self.memory_bytes += cost
            left: dict[str, str] = {}
        else:
            left = self._add_until_full(points, may_spill)
        held = self.held_bytes
        if held > self.peak_memory_bytes:
            self.peak_memory_bytes = held
        if not left:
            self.consumed[(topic, partition)] = next_offset
        return left

    def _add_until_full(self, points: dict[str, str], may_spill: bool) -> dict[str, str]:
        """Point by point: before one would cross the bound, begin a spill and stop there."""
        memory = self.memory
        room = self.memory_limit_bytes - (self.held_bytes - self.memory_bytes)  # what memory may hold now
        for index, (key, line) in enumerate(points.items()):
            cost = len(key) + len(line) + ENTRY_OVERHEAD_BYTES
            previous = memory.get(key)
            if previous is not None:  # a new revision: it may be longer than the one it replaces
                cost -= len(key) + len(previous) + ENTRY_OVERHEAD_BYTES
            # Alone, one point always fits.
            if cost > 0 and self.memory_bytes + cost > room and self.held_bytes:
                if may_spill and self.spilling is None:
                    self._begin_spill()
                return dict(islice(points.items(), index, None))
            memory[key] = line
            self.memory_bytes += cost
        return {}

    @property
    def in_flight_bytes(self) -> int:
        return sum(b.size_bytes for b in self.in_flight if not (b.spilled or b.done))

    @property
    def held_bytes(self) -> int:
        """What the bound limits: memory, the in-flight batches not yet on disk, the spill."""
        spilling = self.spilling.held_bytes if self.spilling is not None else 0
        return self.memory_bytes + self.in_flight_bytes + spilling

    @property
    def writing(self) -> bool:
        return bool(self.in_flight) or self.segment_in_flight is not None

    def spill(self) -> Spill | None:
        """Begin a spill of everything held now (None: nothing held, or one runs already)."""
        if self.spilling is not None or not self.held_bytes:
            return None
        return self._begin_spill()

    def _begin_spill(self) -> Spill:
        """In-flight batches (oldest first), then memory, into one spill for the disk."""
        batches = [b for b in self.in_flight if not (b.spilled or b.done)]  # a done one is in InfluxDB
        lines: dict[str, str] = {}
        for batch in batches:
            lines.update(batch.lines)  # disjoint batches: the order between them is free
            batch.spilled = True
        lines.update(self.memory)  # a newer line of a point replaces the in-flight one
        spill = Spill(list(lines.values()), dict(self.consumed), batches, self.memory, self.memory_bytes)
        self.spilling = spill
        self.memory = {}
        self.memory_bytes = 0
        return spill

    def spilled(self, spill: Spill, segment: Segment) -> None:
        """The spill is on disk as ``segment``: what was read before it began is committable."""
        self._settle_spill(spill)
        self.spool.added(segment)
        self.spills += 1
        self._advance(spill.positions)

    def spill_failed(self, spill: Spill) -> None:
        """The disk refused the spill: its lines are held in memory again, oldest under newest."""
        self._settle_spill(spill)
        for batch in spill.batches:
            batch.spilled = False  # in flight again, or written: not on disk in any case
        merged: dict[str, str] = {}
        for batch in spill.returned:
            merged.update(batch.lines)
        merged.update(spill.memory)
        merged.update(self.memory)
        self._set_memory(merged)

    def _settle_spill(self, spill: Spill) -> None:
        if spill is not self.spilling:
            raise RuntimeError("settling a spill that is not the one running")
        self.spilling = None

    def _set_memory(self, lines: dict[str, str]) -> None:
        self.memory = lines
        self.memory_bytes = sum(len(k) + len(v) + ENTRY_OVERHEAD_BYTES for k, v in lines.items())
        self.peak_memory_bytes = max(self.peak_memory_bytes, self.held_bytes)

    def take_write(self) -> Segment | MemoryBatch | None:
        """What a write may take now (settle it with ``written`` or ``restore``); None: wait.

        The oldest disk segment, once nothing else is in flight; else all of memory, unless
        a point of it is still being written (its older revision could land last) or a
        spill runs (its lines are older, and land on disk, to be written first)."""
        if self.segment_in_flight is not None:
            return None
        if len(self.spool):
            if self.in_flight:
                return None
            self.segment_in_flight = self.spool.oldest()
            return self.segment_in_flight
        if self.spilling is not None or not self.memory:
            return None
        if any(not self.memory.keys().isdisjoint(b.lines.keys()) for b in self.in_flight):
            return None
        batch = MemoryBatch(self.memory, dict(self.consumed), self.memory_bytes)
        self.in_flight.append(batch)
        self.memory = {}
        self.memory_bytes = 0
        return batch

    def restore(self, taken: Segment | MemoryBatch) -> None:
        """Put back what InfluxDB did not take; newer lines added since win."""
        if isinstance(taken, Segment):
            self._settle_segment(taken)  # still first on disk: written again next
            return
        index = self._settle(taken)
        # Newer batches covered its positions too: theirs now wait for its lines, in memory,
        # which the next batch taken will cover.
        for newer in self.in_flight[index:]:
            newer.positions = {}
        self._commit_written_prefix()
        if taken.spilled:  # on disk (or on its way), ahead of memory: putting it back would undo newer lines
            if self.spilling is not None and taken in self.spilling.batches:
                self.spilling.returned.append(taken)  # the spill holds its only copy now
            return
        # It was counted by the bound while in flight: back in memory, the bound still holds.
        self._set_memory({**taken.lines, **self.memory})

    def written(self, taken: Segment | MemoryBatch) -> None:
        """InfluxDB accepted ``taken``: the positions it covers are committable once older batches are."""
        if isinstance(taken, Segment):
            self._settle_segment(taken)
            self.spool.removed(taken)  # its file deleted by the sink (``DiskSpool.delete``)
            return
        self._unsettled(taken).done = True
        self._commit_written_prefix()

    def _commit_written_prefix(self) -> None:
        while self.in_flight and self.in_flight[0].done:
            self._advance(self.in_flight.pop(0).positions)

    def _settle(self, batch: MemoryBatch) -> int:
        index = self.in_flight.index(self._unsettled(batch))
        del self.in_flight[index]
        return index

    def _unsettled(self, batch: MemoryBatch) -> MemoryBatch:
        if batch.done or batch not in self.in_flight:
            raise RuntimeError("settling a memory batch that is not in flight")
        return batch

    def _settle_segment(self, segment: Segment) -> None:
        if segment is not self.segment_in_flight:
            raise RuntimeError("settling a segment that is not the one in flight")
        self.segment_in_flight = None

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
        return not self.memory and not len(self.spool) and self.spilling is None
