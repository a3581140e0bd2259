"""Checkpoint encoding of a partition's indicator state: JSON, deterministic, versioned.

From format 4 the JSON is compressed (zlib, fastest level): a checkpoint is mostly the
partition's last 20 000 event ids, which compress about nine times (620 -> 69 KB on the
benchmark suite's workload, for 1.4 ms), and the JSON is written by pydantic-core (2 ms
where the standard library took 8).
"""

from __future__ import annotations

import json
import zlib
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic_core import to_json

from schemas.local_calendar import (
    DAY,
    MONTH,
    UTC_CALENDAR,
    Calendar,
    ZoneCalendar,
    calendar_named,
    switched,
    zone_of,
)
from streams.indicators.meter_indexes import MeterIndexes
from streams.indicators.producer_activity import ProducerActivity
from streams.indicators.window_state import Accumulator, WindowState, to_nanos

# 9: the calendar the days, months and years were cut on ("calendar", local_calendar.py): UTC
# before; month windows, and the first month counted ("months_from"): none before;
# 8: each meter's indexes carry the terms (commune|sector|carrier) their deltas are counted
# under, and since when (meter_indexes.py): none before, taken from the next index;
# 7: each meter's recent indexes (meter_indexes.py), not its last one only, kept in the store
# of closed windows: the checkpoint carries those changed since its last commit ("indexes");
# 6: closed windows live in a store of their own (closed_windows.py); the checkpoint carries
# those changed since the store's last commit ("closed"), and the store version it stands
# for ("epoch", "generation"), and windows close on the producers' progress ("producers",
# "frontier"); 5: the events remembered are (producer, event id) pairs;
# 4: zlib-compressed JSON, event ids and their days in two columns; 3: sums as integer
# billionths of their unit; 2: float sums, source offsets per raw partition; 1: float sums,
# one source offset (the same partition).
# A watermark a quiet partition moved (engine.py, invariant 6) is the same field, in every
# format: its windows were closed by a watermark like any other.
FORMAT = 9


@dataclass
class PartitionState:
    """Everything a partition's results depend on, and the last offset it includes."""

    windows: WindowState
    indexes: dict[str, MeterIndexes] = field(default_factory=dict)
    offset: int = -1
    # Highest raw offset counted, per raw partition (headers zc-source-partition/-offset).
    source_offsets: dict[int, int] = field(default_factory=dict)
    # Freshness and completeness per producer and commune (None: not tracked).
    activity: ProducerActivity | None = None
    # Meters whose indexes changed since the last checkpoint was taken; and, in a restored
    # state, the indexes its checkpoint carried, for the store (engine.py, invariant 7).
    indexes_changed: set[str] = field(default_factory=set)
    carried_indexes: dict[str, bytes] = field(default_factory=dict)


def _dims(pairs: list[list[str]]) -> tuple[tuple[str, str], ...]:
    return tuple((k, v) for k, v in pairs)


def encode(state: PartitionState, carried_indexes: Mapping[str, list[Any]] | None = None) -> bytes:
    """Serialise, with the meter indexes changed since the store's last commit (None: every
    meter's); the window state must have been flushed (nothing pending emission)."""
    w = state.windows
    if w.touched or w.touched_ytd or w.pending or w.corrected:
        raise ValueError("flush the window state before checkpointing it")
    if carried_indexes is None:
        carried_indexes = {m: h.to_doc() for m, h in state.indexes.items()}
    version = w.carried_version(bool(carried_indexes))
    doc: dict[str, Any] = {
        "format": FORMAT,
        "offset": state.offset,
        "source_offsets": sorted(state.source_offsets.items()),
        "sizes": list(w.sizes),
        "grace": w.grace_seconds,
        "calendar": w.calendar.name,
        "months_from": w.months_from,
        "watermark": w.watermark,
        "frontier": w.frontier,
        "producers": sorted(w.producers.items()),
        "counted": w.counted,
        "duplicates": w.duplicates,
        "late": w.late,
        "open": [[i, d, s, st, a.nanos, a.count, a.revision] for (i, d, s, st), a in sorted(w.open.items())],
        "closed": [
            [i, d, s, st, a.nanos, a.count, a.revision] for (i, d, s, st), a in sorted(w.closed.items())
        ],
        "epoch": version.epoch,
        "generation": version.generation,
        "past_horizon": w.past_horizon,
        "floor": w.floor,
        "ytd": [[i, d, y, a.nanos, a.count] for (i, d, y), a in sorted(w.ytd.items())],
        # In arrival order, the oldest evicted first: the (producer, id) pairs, then the day of each.
        "seen": [list(w.seen), list(w.seen.values())],  # tuples: JSON arrays, as lists are
        "indexes": [[m, *doc] for m, doc in sorted(carried_indexes.items())],
    }
    if state.activity is not None:
        doc["activity"] = state.activity.to_doc()
    return zlib.compress(to_json(doc), 1)


def _first_whole_month(calendar: Calendar, after: int) -> int:
    """The start of the first month after the one holding ``after`` that ``calendar`` counts
    whole: not the part of a month a switch of calendars leaves (local_calendar.py)."""
    zone = ZoneCalendar(zone_of(calendar))
    start = calendar.month(after)[1]
    while calendar.month(start) != zone.month(start):
        start = calendar.month(start)[1]
    return start


def decode(raw: bytes, partition: int, zone: ZoneCalendar | None = None) -> PartitionState:
    """The state checkpointed for valid ``partition`` (which format 1 needs: raw and valid
    partitions were the same then), going on with ``zone``'s days (None: the checkpoint's
    calendar). Its closed windows are those the checkpoint carries: attach the partition's
    store (``WindowState.attach``) before counting."""
    doc = json.loads(raw if raw[:1] == b"{" else zlib.decompress(raw))  # plain JSON before format 4
    if doc.get("format") not in (1, 2, 3, 4, 5, 6, 7, 8, FORMAT):
        raise ValueError(f"unknown checkpoint format {doc.get('format')!r}")
    # Float sums before format 3: counted on from their nearest billionth.
    nanos = to_nanos if doc["format"] < 3 else int
    calendar = calendar_named(doc["calendar"]) if "calendar" in doc else UTC_CALENDAR
    counted_days = doc["open"] or doc["ytd"] or doc.get("closed", doc.get("closed_days")) or doc["watermark"]
    if zone is not None and (calendar.name == zone.name or not counted_days):
        calendar = zone  # the same days (the worker's instance, whose cache it shares), or none cut yet
    latest_day = max((st for _, _, s, st, *_ in doc["open"] if s == DAY), default=0)
    if zone is not None and calendar is not zone:
        # Days already counted stay as they were; the zone's begin after the last of them.
        calendar = switched(calendar, zone, max(doc["watermark"], latest_day))
    sizes, months_from = tuple(doc["sizes"]), doc.get("months_from", 0)
    if "months_from" not in doc and counted_days:
        # Before format 9 no month was counted: months begin with the first that begins after
        # what this state counted, not in the middle of one (a partial month as its total).
        sizes, months_from = (*sizes, MONTH), _first_whole_month(calendar, max(doc["watermark"], latest_day))
    elif "months_from" not in doc:
        sizes = (*sizes, MONTH)
    w = WindowState(sizes=sizes, grace_seconds=doc["grace"], calendar=calendar, months_from=months_from)
    w.watermark = doc["watermark"]
    # Before format 6 windows closed on the watermark, and no producer's progress was kept.
    w.frontier = doc.get("frontier", w.watermark)
    w.producers = dict(doc.get("producers", []))
    w.counted, w.duplicates, w.late = doc["counted"], doc["duplicates"], doc["late"]
    for i, d, s, st, total, count, rev in doc["open"]:
        w.open[(i, _dims(d), s, st)] = Accumulator(nanos(total), count, rev)
    # Before format 6 the checkpoint held every closed day: they are the windows to commit to a
    # store of a new lineage (its first commit carries everything, so a store left by another
    # lineage is wiped, closed_windows.reconcile).
    for i, d, s, st, total, count, rev in doc.get("closed", doc.get("closed_days", [])):
        w.closed[(i, _dims(d), s, st)] = Accumulator(nanos(total), count, rev)
    if doc["format"] < 6:  # its closed windows but days are nowhere: unknown, not new
        w.floor = w.frontier
    else:
        w.epoch, w.past_horizon, w.floor = doc["epoch"], doc["past_horizon"], doc["floor"]
        w.generation = doc["generation"] - (1 if w.closed or (doc["format"] >= 7 and doc["indexes"]) else 0)
    for i, d, y, total, count in doc["ytd"]:
        w.ytd[(i, _dims(d), y)] = Accumulator(nanos(total), count)
    # Before format 5, ids were remembered without their producer: they cannot be told apart
    # now, and are forgotten (a copy of an event counted just before the upgrade would count again).
    if doc["format"] >= 5:
        w.seen = OrderedDict(
            ((producer, event_id), day) for (producer, event_id), day in zip(*doc["seen"], strict=True)
        )
    w.reindex()
    changed: set[str] = set()
    carried: dict[str, bytes] = {}
    if doc["format"] >= 7:  # those changed since the store's last commit: the others are in the store
        indexes = {m: MeterIndexes.from_doc(rest) for m, *rest in doc["indexes"]}
        carried = {m: to_json(rest) for m, *rest in doc["indexes"]}
    else:  # every meter's last index: the next checkpoint carries them to the store
        indexes = {
            m: MeterIndexes([datetime.fromtimestamp(ts, UTC)], [kwh], [None], complete=False)
            for m, kwh, ts in doc["indexes"]
        }
        changed = set(indexes)
    if doc["format"] == 1:
        sources = {partition: doc["source_offset"]} if doc.get("source_offset", -1) >= 0 else {}
    else:
        sources = {p: off for p, off in doc["source_offsets"]}
    activity = ProducerActivity.from_doc(doc.get("activity"), doc["grace"], calendar)
    return PartitionState(w, indexes, doc["offset"], sources, activity, changed, carried)
