"""The store of closed windows: both adapters behave alike, a commit is atomic and durable,
a restore brings the store to the checkpoint's version or refuses, and a partition's next
owner waits for its previous one to release the database (closed_windows*.py, invariant 7
of engine.py)."""

from __future__ import annotations

import asyncio
import json
import zlib
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from schemas.local_calendar import MONTH
from streams.indicators.closed_windows import (
    ClosedWindows,
    MemoryClosedWindows,
    StoreOutOfStep,
    StoreVersion,
    reconcile,
)
from streams.indicators.closed_windows_rocksdb import RocksClosedWindows, open_closed_windows
from streams.indicators.engine import IndicatorPartition
from streams.indicators.window_sums import Accumulator, WindowKey
from tests.contract.samples import REFERENCE
from tests.unit.test_indicator_engine import HOUR, NOW, TOPIC, _apply, _reading, _record, _value

DIMS = (("carrier", "electricity"), ("commune", "17300"), ("sector", "residential"))
OTHER = (("carrier", "gas"), ("commune", "17300"), ("sector", "tertiary"))
ELSEWHERE = (("carrier", "gas"), ("commune", "17028"), ("sector", "tertiary"))
V1 = StoreVersion("a", 1)


def _key(dims: tuple[tuple[str, str], ...], size: int = 3600, start: int = 7200) -> WindowKey:
    return ("energy_consumed_kwh", dims, size, start)


@pytest.fixture(params=["memory", "rocksdb"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ClosedWindows]:
    opened: ClosedWindows = (
        MemoryClosedWindows() if request.param == "memory" else RocksClosedWindows(tmp_path / "p")
    )
    yield opened
    opened.close()


def test_a_commit_writes_forgets_and_records_its_version_at_once(store: ClosedWindows) -> None:
    assert store.version() is None and store.get(_key(DIMS)) is None
    store.commit({_key(DIMS): Accumulator(5, 1, 0), _key(DIMS, start=3600): Accumulator(7, 2, 1)}, V1, {})
    assert store.get(_key(DIMS)) == Accumulator(5, 1, 0) and store.version() == V1
    got = store.get(_key(DIMS))
    assert got is not None
    got.nanos += 1  # a copy: the store changes only by a commit
    assert store.get(_key(DIMS)) == Accumulator(5, 1, 0)
    store.commit({_key(OTHER, size=60): Accumulator(1, 1, 0)}, StoreVersion("a", 2), {3600: 7200})
    assert store.get(_key(DIMS, start=3600)) is None  # started before 7200: forgotten
    assert store.get(_key(DIMS)) == Accumulator(5, 1, 0)  # starts at 7200: kept
    assert store.get(_key(OTHER, size=60)) == Accumulator(1, 1, 0)  # another size: kept
    assert store.version() == StoreVersion("a", 2)


def test_a_slot_holds_the_windows_of_one_indicator_commune_and_window(store: ClosedWindows) -> None:
    big = Accumulator(10**20, 3, 2)  # beyond 64 bits: sums are Python integers
    store.commit(
        {_key(DIMS): big, _key(OTHER): Accumulator(2, 1, 0), _key(ELSEWHERE): Accumulator(3, 1, 0)}, V1, {}
    )
    store.commit({_key(DIMS, start=10800): Accumulator(4, 1, 0)}, StoreVersion("a", 2), {})
    found = sorted(store.in_slot(("energy_consumed_kwh", "17300", 3600, 7200)))
    assert found == sorted([(_key(DIMS), big), (_key(OTHER), Accumulator(2, 1, 0))])
    assert store.in_slot(("emissions_kgco2e", "17300", 3600, 7200)) == []


def test_a_wipe_forgets_windows_and_version(store: ClosedWindows) -> None:
    store.commit({_key(DIMS): Accumulator(5, 1, 0)}, V1, {}, {"m1": b"[true]"})
    store.wipe()
    assert store.version() is None and store.get(_key(DIMS)) is None and store.meter_indexes() == {}


def test_meter_indexes_are_committed_with_the_windows_and_survive_forgetting(store: ClosedWindows) -> None:
    store.commit({_key(DIMS): Accumulator(5, 1, 0)}, V1, {}, {"m1": b"[1]", "m2": b"[2]"})
    # Forgetting every window size the store holds leaves the meters' indexes alone.
    store.commit({}, StoreVersion("a", 2), {60: 10**12, 3600: 10**12}, {"m1": b"[3]"})
    assert store.meter_indexes() == {"m1": b"[3]", "m2": b"[2]"}
    assert store.get(_key(DIMS)) is None and store.version() == StoreVersion("a", 2)


def test_reconcile_commits_what_the_checkpoint_carries_or_refuses_a_store_that_missed_commits() -> None:
    store = MemoryClosedWindows()
    carried = {_key(DIMS): Accumulator(5, 1, 0)}
    assert reconcile(store, StoreVersion("a", 1), carried)  # empty store, first commit of a lineage
    assert not reconcile(store, StoreVersion("a", 1), carried)  # already there
    assert reconcile(store, StoreVersion("a", 2), {_key(OTHER): Accumulator(1, 1, 0)})  # the next one
    assert store.get(_key(DIMS)) == Accumulator(5, 1, 0)
    with pytest.raises(StoreOutOfStep, match="generation 4 of lineage a"):
        reconcile(store, StoreVersion("a", 4), {})  # commit 3 is missing
    with pytest.raises(StoreOutOfStep, match="none \\(an empty store\\)"):
        reconcile(MemoryClosedWindows(), StoreVersion("b", 2), {})  # a lost folder
    assert reconcile(store, StoreVersion("b", 0), {})  # a partition started afresh: wiped
    assert store.get(_key(DIMS)) is None and store.version() == StoreVersion("b", 0)
    # Generation 1 carrying nothing was taken after its lineage's first commit: a store that
    # lacks that commit (an empty folder) would lose windows, not another lineage's leftovers.
    with pytest.raises(StoreOutOfStep):
        reconcile(MemoryClosedWindows(), StoreVersion("c", 1), {})


def test_a_commit_survives_the_process_and_a_second_opener_waits_for_the_first(tmp_path: Path) -> None:
    async def scenario() -> list[str]:
        events: list[str] = []
        first = await open_closed_windows(tmp_path, TOPIC, 3)
        first.commit({_key(DIMS): Accumulator(5, 1, 0)}, V1, {})
        second = asyncio.ensure_future(open_closed_windows(tmp_path, TOPIC, 3, retry_seconds=0.01))
        await asyncio.sleep(0.1)
        events.append("waiting" if not second.done() else "opened at once")
        first.close()
        reopened = await asyncio.wait_for(second, 5)
        events.append(f"{reopened.get(_key(DIMS))} {reopened.version()}")
        reopened.close()
        return events

    assert asyncio.run(scenario()) == ["waiting", f"{Accumulator(5, 1, 0)} {V1}"]
    assert (tmp_path / f"{TOPIC}.3").is_dir()


def _engine(checkpoint: bytes | None, store: ClosedWindows) -> IndicatorPartition[int]:
    return IndicatorPartition(TOPIC, 2, checkpoint, grace_seconds=300, checkpoint_seconds=5.0, store=store)


def test_a_late_reading_corrects_a_window_the_store_kept_across_a_restart(tmp_path: Path) -> None:
    engine = _engine(None, RocksClosedWindows(tmp_path / "p"))
    _apply(engine, _record(0, _reading(0, 0), _reading(1, 15)))
    _apply(engine, _record(1, _reading(2, 24 * 60)))  # a day later: the hour closes
    published = engine.flush(NOW, 0.0, REFERENCE)
    assert _value(published, "energy_consumed_kwh", "1h") == 0.7 and published.checkpoint is not None
    engine.checkpoint_delivered()
    engine.close()
    blob = json.loads(zlib.decompress(published.checkpoint[1]))
    assert blob["closed"] and blob["generation"] == 1  # carried, then committed

    # Restarted with the checkpoint (nothing left to carry) and the store it committed.
    restarted = _engine(published.checkpoint[1], RocksClosedWindows(tmp_path / "p"))
    assert not restarted.state.windows.closed
    _apply(restarted, _record(2, _reading(3, 30)))  # late for the hour closed a day ago
    again = restarted.flush(NOW + timedelta(seconds=1), 1.0, REFERENCE)
    assert _value(again, "energy_consumed_kwh", "1h") == 1.05
    assert _value(again, "energy_consumed_kwh", "15m", HOUR + 30 * 60) == 0.35
    restarted.close()


def test_a_crash_between_the_checkpoint_and_the_commit_loses_no_closed_window(tmp_path: Path) -> None:
    engine = _engine(None, RocksClosedWindows(tmp_path / "p"))
    _apply(engine, _record(0, _reading(0, 0)))
    _apply(engine, _record(1, _reading(2, 24 * 60)))
    checkpoint = engine.flush(NOW, 0.0, REFERENCE).checkpoint
    assert checkpoint is not None
    engine.close()  # the checkpoint is in Kafka; the worker dies before committing the store
    restarted = _engine(checkpoint[1], RocksClosedWindows(tmp_path / "p"))
    _apply(restarted, _record(2, _reading(3, 5)))
    assert _value(restarted.flush(NOW, 1.0, REFERENCE), "energy_consumed_kwh", "1h") == 0.7
    restarted.close()


def test_a_state_of_an_earlier_format_skips_the_windows_closed_before_it_rather_than_restart_them() -> None:
    """Format 5 kept closed days only: an hour closed before the upgrade is in no store, and a
    late reading for it must not publish a final hour holding that reading alone."""
    engine = _engine(None, MemoryClosedWindows())
    _apply(engine, _record(0, _reading(0, 0)))
    _apply(engine, _record(1, _reading(1, 24 * 60)))
    checkpoint = engine.flush(NOW, 0.0, REFERENCE).checkpoint
    assert checkpoint is not None
    doc = json.loads(zlib.decompress(checkpoint[1]))
    doc["format"] = 5  # as format 5 wrote it: closed days only, no store, no producers
    doc["closed_days"] = [row for row in doc.pop("closed") if row[2] == 86400]
    for key in (
        "epoch",
        "generation",
        "past_horizon",
        "floor",
        "frontier",
        "producers",
        "calendar",
        "months_from",
    ):
        del doc[key]
    doc["sizes"] = [size for size in doc["sizes"] if size != MONTH]  # no months before format 9
    doc["open"] = [row for row in doc["open"] if row[2] != MONTH]
    upgraded = _engine(zlib.compress(json.dumps(doc).encode()), MemoryClosedWindows())
    _apply(upgraded, _record(2, _reading(2, 5)))  # late, for the hour closed before the upgrade
    published = upgraded.flush(NOW, 11.0, REFERENCE)
    assert _value(published, "energy_consumed_kwh", "1d", HOUR - HOUR % 86400) == 0.7  # the day: corrected
    assert not [v for _, v in published.updates if b'"window":"1h"' in v]
    assert upgraded.state.windows.past_horizon == 2 * 3  # 2 measures (kWh, CO2e) x 1m, 15m, 1h


def test_a_commit_forgets_by_the_checkpoint_s_watermark_not_by_readings_applied_since() -> None:
    store = MemoryClosedWindows()
    engine = _engine(None, store)
    _apply(engine, _record(0, _reading(0, 0)))
    _apply(engine, _record(1, _reading(1, 24 * 60)))
    assert engine.flush(NOW, 0.0, REFERENCE).checkpoint is not None
    minutes = [key for key in engine.state.windows.closed if key[2] == 60 and key[3] == HOUR]
    assert minutes
    _apply(engine, _record(2, _reading(2, 4 * 24 * 60)))  # read while the checkpoint travels
    engine.state.windows.settle()  # (a flush would also close what it passes)
    engine.checkpoint_delivered()
    assert all(store.get(key) is not None for key in minutes)  # within 48 h of the checkpoint's watermark
