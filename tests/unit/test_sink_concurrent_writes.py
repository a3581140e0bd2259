"""Two writes at once: which batch may start beside a running one, and what becomes
committable when requests land out of order (InfluxDB applies whichever lands last, so a
later revision of a point must never share the road with an older one)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from sinks.disk_spool import DiskSpool, Segment
from sinks.point_buffer import ENTRY_OVERHEAD_BYTES, MemoryBatch, PointBuffer


def point(key: str, revision: int) -> dict[str, str]:
    return {key: f"{key}@{revision}"}


def take_memory(buffer: PointBuffer) -> MemoryBatch:
    taken = buffer.take_write()
    assert isinstance(taken, MemoryBatch)
    return taken


def test_a_second_write_starts_only_with_points_the_running_one_does_not_hold(tmp_path: Path) -> None:
    buffer = PointBuffer(DiskSpool(tmp_path), 1 << 20)
    buffer.add(point("k", 1) | point("j", 1), "t", 0, 1)
    first = take_memory(buffer)
    buffer.add(point("m", 1), "t", 0, 2)
    second = take_memory(buffer)  # disjoint: both in flight
    buffer.add(point("k", 2), "t", 0, 3)
    assert buffer.take_write() is None  # k@2 could land before k@1: wait
    buffer.written(second)
    assert buffer.take_write() is None  # k@1 is still on its way
    buffer.written(first)
    assert take_memory(buffer).lines == {"k": "k@2"}


def two_batches_in_flight(tmp_path: Path) -> tuple[PointBuffer, MemoryBatch, MemoryBatch]:
    """a@1 (offset 10) in flight, then b@1 (offset 20) beside it."""
    buffer = PointBuffer(DiskSpool(tmp_path), 1 << 20)
    buffer.add(point("a", 1), "t", 0, 10)
    older = take_memory(buffer)
    buffer.add(point("b", 1), "t", 0, 20)
    return buffer, older, take_memory(buffer)


def test_positions_of_a_newer_batch_wait_for_the_older_one(tmp_path: Path) -> None:
    buffer, older, newer = two_batches_in_flight(tmp_path)
    buffer.written(newer)
    assert buffer.take_committable() == {}  # offset 10's point is not in InfluxDB yet
    buffer.written(older)
    assert buffer.take_committable() == {("t", 0): 20}


def test_a_failed_older_batch_holds_back_the_positions_of_a_newer_one(tmp_path: Path) -> None:
    buffer, older, newer = two_batches_in_flight(tmp_path)
    buffer.written(newer)
    buffer.restore(older)  # InfluxDB was away for this one
    assert buffer.take_committable() == {}
    assert buffer.memory == {"a": "a@1"}
    retry = take_memory(buffer)
    buffer.written(retry)
    assert buffer.take_committable() == {("t", 0): 20}


def test_a_segment_is_written_alone(tmp_path: Path) -> None:
    buffer = PointBuffer(DiskSpool(tmp_path), 1 << 20)
    buffer.add(point("k", 1), "t", 0, 1)
    batch = take_memory(buffer)
    buffer.add(point("k", 2), "t", 0, 2)
    spill = buffer.spill()  # k@2 on disk while k@1 is in flight
    assert spill is not None
    buffer.spilled(spill, buffer.spool.write(spill.lines))
    assert buffer.take_write() is None
    buffer.written(batch)
    segment = buffer.take_write()
    assert isinstance(segment, Segment) and buffer.spool.read_lines(segment) == ["k@2"]
    buffer.add(point("j", 1), "t", 0, 3)
    assert buffer.take_write() is None  # memory waits for the disk
    buffer.written(segment)
    assert take_memory(buffer).lines == {"j": "j@1"}


KEYS = "abcd"
operations = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.sampled_from(KEYS)),
        st.tuples(st.just("start"), st.none()),
        st.tuples(st.just("land"), st.integers(0, 2)),
        st.tuples(st.just("fail"), st.integers(0, 2)),
        st.tuples(st.just("spill"), st.none()),
        st.tuples(st.just("disk_takes"), st.none()),
        st.tuples(st.just("disk_refuses"), st.none()),
    ),
    max_size=60,
)


@settings(max_examples=400, deadline=None)
@given(operations)
def test_no_interleaving_lands_an_older_revision_after_a_newer_one(steps: list[tuple[str, object]]) -> None:
    """Random reads, spills landing on disk or refused by it, and up to three writes landing
    or failing in any order: InfluxDB never goes back to an older revision, the bound holds,
    every committed record is durable, and once all is written InfluxDB holds the newest
    revision of every point."""
    with tempfile.TemporaryDirectory() as folder:
        buffer = PointBuffer(DiskSpool(Path(folder)), 5 * (ENTRY_OVERHEAD_BYTES + 4))
        influx: dict[str, int] = {}
        records: list[tuple[str, int]] = []  # offset -> (key, revision)
        waiting: list[tuple[dict[str, str], int]] = []  # read, not taken by the buffer yet (the sink's)
        committed = 0
        running: list[Segment | MemoryBatch] = []
        disk_full = False  # after a refusal the sink begins no spill until the disk takes one

        def land(taken: Segment | MemoryBatch) -> None:
            if isinstance(taken, Segment):
                written = buffer.spool.read_lines(taken)
                buffer.spool.delete(taken)
            else:
                written = list(taken.lines.values())
            for line in written:
                key, revision = line.split("@")
                assert int(revision) >= influx.get(key, -1), f"{line} landed after revision {influx[key]}"
                influx[key] = int(revision)
            buffer.written(taken)

        def admit() -> None:
            while waiting:
                points, offset = waiting[0]
                if left := buffer.add(points, "t", 0, offset, may_spill=not disk_full):
                    waiting[0] = (left, offset)
                    return
                del waiting[0]

        def durable(key: str, revision: int) -> bool:
            if influx.get(key, -1) >= revision:
                return True
            spooled = [line for path in Path(folder).glob("*.lp") for line in path.read_text().split()]
            return any(line.split("@")[0] == key and int(line.split("@")[1]) >= revision for line in spooled)

        for action, arg in steps:
            if action == "add":
                key = str(arg)
                records.append((key, 1 + sum(k == key for k, _ in records)))
                waiting.append((point(*records[-1]), len(records)))
            elif action == "start" and len(running) < 3 and (taken := buffer.take_write()) is not None:
                running.append(taken)
            elif action in ("land", "fail") and running:
                taken = running.pop(int(str(arg)) % len(running))
                land(taken) if action == "land" else buffer.restore(taken)
            elif action == "spill":
                buffer.spill()
            elif action == "disk_takes":
                disk_full = False
                if (spill := buffer.spilling) is not None:
                    buffer.spilled(spill, buffer.spool.write(spill.lines))
            elif action == "disk_refuses" and (spill := buffer.spilling) is not None:
                disk_full = True
                buffer.spill_failed(spill)
            admit()
            assert buffer.held_bytes <= buffer.memory_limit_bytes
            committed = max([committed, *buffer.take_committable().values()])
            assert all(durable(*records[offset]) for offset in range(committed))
        while running:
            land(running.pop())
        disk_full = False
        while waiting or buffer.spilling is not None or not buffer.empty:
            if (spill := buffer.spilling) is not None:
                buffer.spilled(spill, buffer.spool.write(spill.lines))
            admit()
            while (taken := buffer.take_write()) is not None:
                land(taken)
        committed = max([committed, *buffer.take_committable().values()])
        assert committed == len(records)  # all written: every record's position is committed
        newest = {key: revision for key, revision in records}
        assert influx == newest
