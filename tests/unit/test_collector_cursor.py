"""A source's cursor (collectors/source_cursor.py): what is new, what was collected, on disk.

What is proven: an event younger than its device's newest is new, one as old is new unless its
id was sent at that time, a page repeating an event yields it once; the cursor survives a save
and a load whole (devices, validators, refused rows), keeps only the REFUSED_KEPT newest
refused rows, and a cursor file it cannot read stops the collector with an error naming the
file. A property over random event streams cut at random into polls, with the cursor saved and
reloaded between polls and earlier events served again (a snapshot feed serves a station's
status until it changes): each distinct event is sent exactly once. Why: the cursor is all
that stands between a restart and a resend of everything, or a loss of what came meanwhile.
"""

from __future__ import annotations

import json
import random
from itertools import pairwise
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collectors.source_cursor import (
    CURSOR_VERSION,
    REFUSED_KEPT,
    CursorError,
    DeviceMark,
    SourceCursor,
    load_cursor,
)
from sensors.replay_mapping import SourceEvent

T0 = 1_796_551_200.0  # 2026-12-06T10:00:00Z


def _event(device: str, time: float, variant: str = "") -> SourceEvent:
    """An event whose id is made of its device, time and variant, as a mapping makes it."""
    event_id = f"test-{device}-{int(time)}" + (f"-{variant}" if variant else "")
    return SourceEvent(time, device, "environment", "17300", {"value": 1.0}, None, event_id)


def _ids(events: list[SourceEvent]) -> list[str]:
    return [e.event_id for e in events]


def _cursor(tmp_path: Path) -> SourceCursor:
    return load_cursor(tmp_path / "cursors" / "source.json")


def test_a_new_cursor_is_empty_and_asks_from_the_start(tmp_path: Path) -> None:
    cursor = _cursor(tmp_path)
    assert cursor.devices == {} and cursor.validators == {} and cursor.refused == {}
    assert cursor.since() is None
    assert not cursor.path.exists()  # loading writes nothing


def test_an_event_younger_than_its_devices_mark_is_new(tmp_path: Path) -> None:
    cursor = _cursor(tmp_path)
    cursor.advance([_event("a", T0), _event("b", T0 + 600)])
    new, old = cursor.fresh([_event("a", T0 + 60), _event("a", T0 - 60), _event("b", T0 + 60)])
    assert _ids(new) == ["test-a-1796551260"]
    assert old == 2  # older than their device's newest: taken as collected
    assert cursor.since() == T0  # the oldest of the devices' newest


def test_an_event_of_a_device_never_seen_is_new_whatever_its_time(tmp_path: Path) -> None:
    cursor = _cursor(tmp_path)
    cursor.advance([_event("a", T0)])
    new, old = cursor.fresh([_event("c", T0 - 86400)])
    assert len(new) == 1 and old == 0


def test_same_time_known_id_is_old_and_same_time_new_id_is_new(tmp_path: Path) -> None:
    cursor = _cursor(tmp_path)
    cursor.advance([_event("a", T0, "no2")])
    new, old = cursor.fresh([_event("a", T0, "no2"), _event("a", T0, "pm25")])
    assert _ids(new) == ["test-a-1796551200-pm25"] and old == 1
    cursor.advance(new)
    assert cursor.devices["a"] == DeviceMark(T0, {"test-a-1796551200-no2", "test-a-1796551200-pm25"})
    assert cursor.fresh([_event("a", T0, "no2"), _event("a", T0, "pm25")]) == ([], 2)


def test_a_younger_event_replaces_the_ids_of_its_device(tmp_path: Path) -> None:
    cursor = _cursor(tmp_path)
    cursor.advance([_event("a", T0, "x"), _event("a", T0, "y")])
    cursor.advance([_event("a", T0 + 60)])
    assert cursor.devices["a"] == DeviceMark(T0 + 60, {"test-a-1796551260"})
    cursor.advance([_event("a", T0, "z")])  # older: the mark stays
    assert cursor.devices["a"].time == T0 + 60


def test_a_page_repeating_an_event_yields_it_once(tmp_path: Path) -> None:
    cursor = _cursor(tmp_path)
    page = [_event("a", T0), _event("b", T0), _event("a", T0), _event("a", T0)]
    new, old = cursor.fresh(page)
    assert _ids(new) == ["test-a-1796551200", "test-b-1796551200"] and old == 2


def test_fresh_marks_nothing_collected(tmp_path: Path) -> None:
    cursor = _cursor(tmp_path)
    cursor.fresh([_event("a", T0)])
    assert cursor.devices == {}
    assert len(cursor.fresh([_event("a", T0)])[0]) == 1  # until advance, after Kafka's ack


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    cursor = _cursor(tmp_path)
    cursor.advance([_event("a", T0 + 0.25, "x"), _event("a", T0 + 0.25, "y"), _event("b", T0)])
    cursor.remember("http://example.org/s.json", '"v1"', "Sun, 06 Dec 2026 10:00:00 GMT")
    cursor.remember("http://example.org/t.json", None, "Sun, 06 Dec 2026 09:00:00 GMT")
    cursor.refuse(["d1", "d2", "d3"])
    cursor.save()
    assert not list(cursor.path.parent.glob("*.tmp"))  # renamed into place

    again = load_cursor(cursor.path)
    assert again == cursor
    assert again.devices["a"] == DeviceMark(T0 + 0.25, {"test-a-1796551200-x", "test-a-1796551200-y"})
    assert again.validators == {
        "http://example.org/s.json": {"etag": '"v1"', "last_modified": "Sun, 06 Dec 2026 10:00:00 GMT"},
        "http://example.org/t.json": {"last_modified": "Sun, 06 Dec 2026 09:00:00 GMT"},
    }
    assert list(again.refused) == ["d1", "d2", "d3"]  # oldest first, as kept
    assert json.loads(cursor.path.read_text())["version"] == CURSOR_VERSION


def test_remember_without_validators_forgets_them(tmp_path: Path) -> None:
    cursor = _cursor(tmp_path)
    cursor.remember("k", '"v1"', None)
    cursor.remember("k", None, None)
    assert cursor.validators == {}


def test_refused_rows_are_bounded_keeping_the_newest(tmp_path: Path) -> None:
    cursor = _cursor(tmp_path)
    cursor.refuse(f"r{k}" for k in range(REFUSED_KEPT))
    cursor.refuse(["r0"])  # refused again: now the newest
    cursor.refuse(f"s{k}" for k in range(10))
    assert len(cursor.refused) == REFUSED_KEPT
    assert "r0" in cursor.refused
    assert all(f"r{k}" not in cursor.refused for k in range(1, 11))  # the 10 oldest went
    assert "r11" in cursor.refused
    assert list(cursor.refused)[-11:] == ["r0", *(f"s{k}" for k in range(10))]
    cursor.save()
    assert load_cursor(cursor.path).refused == cursor.refused


@pytest.mark.parametrize(
    "text",
    [
        "{not json",
        "",
        "[1, 2]",
        '{"version": 1}',
        '{"version": 1, "devices": {"a": {"time": "soon", "ids": []}}, "validators": {}}',
        '{"version": 1, "devices": {"a": {"ids": []}}, "validators": {}}',
        '{"version": 1, "devices": [], "validators": {}}',
        '{"version": 1, "devices": {}, "validators": {"k": 3}}',
    ],
)
def test_an_unreadable_cursor_file_names_its_path(tmp_path: Path, text: str) -> None:
    path = tmp_path / "source.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(CursorError) as caught:
        load_cursor(path)
    assert str(path) in str(caught.value)
    assert "move it away" in str(caught.value)


def test_an_undecodable_cursor_file_names_its_path(tmp_path: Path) -> None:
    path = tmp_path / "source.json"
    path.write_bytes(b'{"version": 1, "devices": {"\xff": 1}}')
    with pytest.raises(CursorError, match="unreadable cursor") as caught:
        load_cursor(path)
    assert str(path) in str(caught.value)


@pytest.mark.parametrize("version", [0, 2, "1", None])
def test_a_cursor_of_another_version_names_its_path(tmp_path: Path, version: object) -> None:
    path = tmp_path / "source.json"
    path.write_text(json.dumps({"version": version, "devices": {}, "validators": {}, "refused": []}))
    with pytest.raises(CursorError) as caught:
        load_cursor(path)
    assert str(path) in str(caught.value) and f"cursor version {version!r}" in str(caught.value)


@pytest.mark.parametrize("refused", [None, 3])
def test_a_cursor_with_a_broken_refused_list_names_its_path(tmp_path: Path, refused: object) -> None:
    path = tmp_path / "source.json"
    path.write_text(json.dumps({"version": 1, "devices": {}, "validators": {}, "refused": refused}))
    with pytest.raises(CursorError):
        load_cursor(path)


# The property -------------------------------------------------------------------------------

DEVICES = ("a", "b", "c")
EVENTS = st.lists(
    st.tuples(st.sampled_from(DEVICES), st.integers(0, 4), st.sampled_from(["", "no2"])),
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(
    raw=EVENTS,
    cuts=st.lists(st.integers(0, 40), max_size=8),
    seed=st.integers(0, 2**32 - 1),
)
def test_every_distinct_event_is_sent_exactly_once_whatever_the_polls(
    tmp_path_factory: pytest.TempPathFactory, raw: list[tuple[str, int, str]], cuts: list[int], seed: int
) -> None:
    """Events in nondecreasing time per device (repeats allowed), cut into consecutive polls;
    each poll also serves again some events of the earlier polls, anywhere in its page, and
    repeats some of its own; the cursor is saved after each poll and loaded before the next."""
    rng = random.Random(seed)
    # Nondecreasing time per device: sort by time, keeping the drawn interleaving of devices.
    stream = sorted((_event(d, T0 + 60 * t, v) for d, t, v in raw), key=lambda e: e.time)
    bounds = sorted({0, len(stream), *(min(c, len(stream)) for c in cuts)})
    path = tmp_path_factory.mktemp("cursor") / "source.json"
    sent: list[str] = []
    served: list[SourceEvent] = []
    for start, end in pairwise(bounds):
        chunk = stream[start:end]
        again = rng.sample(served, k=rng.randint(0, len(served)))
        repeats = rng.sample(chunk, k=rng.randint(0, len(chunk)))
        page = chunk + again + repeats
        # Shuffle the re-served events into the page, keeping the new ones in their order.
        positions = sorted(rng.sample(range(len(page)), k=len(chunk)))
        rest = iter(again + repeats)
        chunk_iter = iter(chunk)
        ordered = [next(chunk_iter) if k in positions else next(rest) for k in range(len(page))]
        cursor = load_cursor(path)
        new, old = cursor.fresh(ordered)
        assert len(new) + old == len(ordered)
        cursor.advance(new)
        cursor.save()
        sent.extend(_ids(new))
        served.extend(chunk)
    assert sorted(sent) == sorted({e.event_id for e in stream})
