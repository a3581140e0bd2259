"""The indicator engine's bookkeeping: what a record does, what a flush hands out, in which
order, and what a restart restores (streams/indicators/engine.py, its invariants)."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from reference.loader import ReferenceData
from schemas.catalogue import valid_topic
from schemas.dead_letter import DeadLetter
from streams.indicators.checkpoints import checkpoint_key
from streams.indicators.engine import (
    Ack,
    IndicatorPartition,
    Publication,
    RegisteredDevices,
    ValidRecord,
)
from streams.indicators.window_state_codec import decode
from streams.validation.engine import SOURCE_OFFSET_HEADER, SOURCE_PARTITION_HEADER, VALID_ARRAY
from tests.contract.samples import REFERENCE
from tests.energy_readings import energy_reading

TOPIC = valid_topic("energy")
T0 = datetime(2026, 11, 30, 10, tzinfo=UTC)
NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)
HOUR = int(T0.timestamp())


def _engine(checkpoint: bytes | None = None, partition: int = 2) -> IndicatorPartition[int]:
    return IndicatorPartition(TOPIC, partition, checkpoint, grace_seconds=300, checkpoint_seconds=5.0)


def _reading(n: int, minutes: float = 0, **changes: Any) -> dict[str, Any]:
    """350 Wh (0.35 kWh) over the quarter-hour from ``minutes`` after T0 (the windows it
    counts in start there); ids differ by ``n``."""
    return energy_reading("partner-1", f"e{n}", T0 + timedelta(minutes=minutes + 15), **changes)


def _index(n: int, minutes: float, kwh: float) -> dict[str, Any]:
    return _reading(n, minutes, kind="index", quantity=kwh, unit="kWh", interval_start=None)


def _before_any_factor(n: int) -> dict[str, Any]:
    """A reading of 2018: no electricity factor is valid then."""
    return _reading(n, event_time="2018-06-01T10:00:00+00:00", interval_start="2018-06-01T09:45:00+00:00")


def _jump(n: int) -> list[dict[str, Any]]:
    """A new meter's baseline, then 899 kWh a minute later: beyond its 36 kW, a jump."""
    meter = {"meter_id": f"m{n}"}
    return [_index(n, 0, 1.0) | meter, _index(-n, 1, 900.0) | meter]


def _record(offset: int, *readings: dict[str, Any], headers: Any = None, partition: int = 2) -> ValidRecord:
    adapter = VALID_ARRAY["energy"]
    value = adapter.dump_json(adapter.validate_json(json.dumps(readings)), by_alias=True)
    return ValidRecord(TOPIC, partition, offset, b"17300", value, headers)


def _source(raw_partition: int, raw_offset: int) -> list[tuple[str, bytes]]:
    return [
        (SOURCE_PARTITION_HEADER, str(raw_partition).encode()),
        (SOURCE_OFFSET_HEADER, str(raw_offset).encode()),
    ]


def _value(publication: Publication[int], indicator: str, window: str, start: int = HOUR) -> float:
    """The last value published for the series of ``_reading`` (residential electricity)."""
    found = [
        json.loads(value)
        for _, value in publication.updates
        if json.loads(value)["indicator"] == indicator
        and json.loads(value)["window"] == window
        and int(datetime.fromisoformat(json.loads(value)["window_start"]).timestamp()) == start
        and json.loads(value)["dimensions"].get("sector") == "residential"
    ]
    assert found, (indicator, window, start)
    return round(float(found[-1]["value"]), 9)


def _apply(engine: IndicatorPartition[int], record: ValidRecord, ref: ReferenceData = REFERENCE) -> Any:
    return engine.apply(record, ref, NOW, record.offset)


def test_a_restored_partition_skips_what_its_checkpoint_includes_and_counts_the_rest_once() -> None:
    first = _engine()
    _apply(first, _record(0, _reading(0, 1)))
    _apply(first, _record(1, _reading(1, 2)))
    blob = first.flush(NOW, 0.0, REFERENCE).checkpoint
    assert blob is not None and blob[0] == checkpoint_key(TOPIC, 2)
    _apply(first, _record(2, _reading(2, 3)))  # read, never checkpointed: the crash loses it

    restored = _engine(blob[1])
    assert restored.state.offset == 1
    for offset in (0, 1):  # the partition is re-read from the committed offset
        applied = _apply(restored, _record(offset, _reading(offset, offset + 1)))
        assert (applied.ack, applied.skipped) == (Ack.NOW, True)
        assert applied.counters == Counter(restored_records_skipped=1)
    applied = _apply(restored, _record(2, _reading(2, 3)))
    assert (applied.ack, applied.skipped, applied.counters) == (
        Ack.WITH_CHECKPOINT,
        False,
        Counter(counted=1),
    )

    after_restart, uninterrupted = restored.flush(NOW, 0.0, REFERENCE), first.flush(NOW, 0.0, REFERENCE)
    assert _value(after_restart, "energy_consumed_kwh", "1h") == _value(
        uninterrupted, "energy_consumed_kwh", "1h"
    )
    assert _value(after_restart, "energy_consumed_kwh", "1h") == 1.05  # 3 x 0.35 kWh, none twice
    assert after_restart.acks == [2]  # the skipped ones were acknowledged at once, not again


def test_a_record_validation_replayed_is_skipped_by_its_source_offset_and_acknowledged_with_the_next() -> (
    None
):
    engine = _engine()
    assert _apply(engine, _record(0, _reading(0, 1), headers=_source(3, 500))).counters == Counter(counted=1)
    # The validation stage crashed and replayed raw 3@500: same events, a new valid offset.
    replay = _apply(engine, _record(1, _reading(0, 1), headers=_source(3, 500)))
    assert (replay.ack, replay.skipped) == (Ack.WITH_CHECKPOINT, True)
    assert replay.counters == Counter(replayed_records_skipped=1)  # never reached the duplicate check
    # Source offsets are per raw partition; a record stamped before the partition header
    # comes from the raw partition of its own number (2).
    other = _apply(engine, _record(2, _reading(2, 2), headers=_source(4, 10)))
    legacy = _apply(engine, _record(3, _reading(3, 3), headers=[(SOURCE_OFFSET_HEADER, b"7")]))
    assert other.counters == legacy.counters == Counter(counted=1)
    assert _apply(engine, _record(4, _reading(4, 4), headers=_source(2, 7))).skipped

    publication = engine.flush(NOW, 0.0, REFERENCE)
    assert publication.acks == [0, 1, 2, 3, 4]
    assert _value(publication, "energy_consumed_kwh", "1h") == 1.05
    assert publication.checkpoint is not None
    restored = decode(publication.checkpoint[1], 2)
    assert (restored.offset, restored.source_offsets) == (4, {3: 500, 4: 10, 2: 7})


def test_an_unreadable_record_is_dead_lettered_at_the_flush_and_acknowledged_after_its_checkpoint() -> None:
    engine = _engine()
    garbage = ValidRecord(TOPIC, 2, 0, b"17028", b"not an array of readings")
    applied = _apply(engine, garbage)
    assert (applied.ack, applied.skipped) == (Ack.WITH_CHECKPOINT, False)
    assert applied.counters == Counter(unreadable_records=1)
    _apply(engine, _record(1, _reading(1, 1)))  # the next one still counts

    publication = engine.flush(NOW, 0.0, REFERENCE)
    ((key, value),) = publication.dead_letters
    letter = DeadLetter.model_validate_json(value)
    assert key == b"energy" and letter.original_payload() == garbage.value
    assert (letter.stage, letter.failed_at) == ("indicators", NOW)
    assert letter.reason.startswith("Invalid JSON"), letter.reason
    assert letter.origin.model_dump() == {
        "transport": "kafka", "topic": TOPIC, "partition": 2, "offset": 0, "key": "17028", "index": None,
    }  # fmt: skip
    assert publication.acks == [0, 1] and _value(publication, "energy_consumed_kwh", "1h") == 0.35
    assert engine.flush(NOW, 10.0, REFERENCE).dead_letters == []  # handed out once


def test_events_read_but_not_counted_are_dead_lettered_with_their_anomaly() -> None:
    engine = _engine()
    applied = _apply(
        engine,
        _record(
            0,
            _index(0, 0, 1000.0),  # the meter's first index: a baseline, not a dead letter
            _index(1, 10, 1001.0),  # 1 kWh in 10 min: counted
            _index(2, 20, 5000.0),  # 3 999 kWh in 10 min, beyond 36 kW: a jump
            _reading(
                3, 30, event_time="2018-06-01T10:00:00+00:00", interval_start="2018-06-01T09:45:00+00:00"
            ),
        ),
    )
    assert applied.counters == Counter(index_baselines=1, index_jump=1, no_emission_factor=1, counted=1)
    letters = [
        DeadLetter.model_validate_json(value) for _, value in engine.flush(NOW, 0.0, REFERENCE).dead_letters
    ]
    assert [(e.type, letter.origin.index) for letter in letters for e in letter.errors] == [
        ("index_jump", 2),
        ("no_emission_factor", 3),
    ]
    assert json.loads(letters[0].payload)["event_id"] == "e2"  # the event itself, verbatim JSON
    assert all(letter.origin.offset == 0 and letter.failed_at == NOW for letter in letters)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("apply"), st.sampled_from(["counted", "jump", "unreadable", "no_factor"])),
            st.tuples(st.just("flush"), st.floats(0, 4)),  # seconds since the previous flush
        ),
        max_size=30,
    )
)
def test_every_dead_letter_is_handed_out_no_later_than_the_checkpoint_covering_its_record(
    steps: list,
) -> None:  # type: ignore[type-arg]
    # The shell delivers a publication's updates and dead letters, then its checkpoint, then
    # acknowledges: so a record's letter must come in the publication that acknowledges the
    # record or in an earlier one, never later (a crash after the checkpoint would lose it).
    engine = _engine()
    expected: dict[int, int] = {}  # offset -> dead letters it must give
    delivered: Counter[int] = Counter()
    acknowledged: list[int] = []
    clock = 0.0
    for offset, (action, arg) in enumerate([*steps, ("flush", 10.0)]):
        if action == "apply":
            readings = {
                "counted": [_reading(offset, 1)],
                "jump": _jump(offset),
                "no_factor": [_before_any_factor(offset)],
            }
            if arg == "unreadable":
                record = ValidRecord(TOPIC, 2, offset, None, b"\x00 garbage")
            else:
                record = _record(offset, *readings[arg])
            _apply(engine, record)
            expected[offset] = 0 if arg == "counted" else 1
            continue
        clock += arg
        publication = engine.flush(NOW, clock, REFERENCE)
        for _, value in publication.dead_letters:
            delivered[DeadLetter.model_validate_json(value).origin.offset or 0] += 1
        assert (publication.checkpoint is None) == (publication.acks == [])
        for token in publication.acks:
            assert delivered[token] == expected[token], f"record {token} acknowledged before its dead letter"
        acknowledged += publication.acks
    assert acknowledged == sorted(expected)  # every record, once, in order
    assert delivered == Counter({k: v for k, v in expected.items() if v})


def test_a_checkpoint_only_when_due_and_only_when_records_are_pending() -> None:
    engine = _engine()
    assert engine.flush(NOW, 0.0, REFERENCE).checkpoint is None  # nothing read yet
    _apply(engine, _record(0, _reading(0, 1)))
    assert engine.flush(NOW, 0.0, REFERENCE).acks == [0]  # the first one is due at once
    _apply(engine, _record(1, _reading(1, 2)))
    not_yet = engine.flush(NOW, 4.9, REFERENCE)
    assert (not_yet.checkpoint, not_yet.acks) == (None, [])
    assert _value(not_yet, "energy_consumed_kwh", "1h") == 0.7  # the updates do not wait
    _apply(engine, _record(2, _reading(2, 3)))
    due = engine.flush(NOW, 5.0, REFERENCE)
    assert due.acks == [1, 2] and due.checkpoint is not None
    assert decode(due.checkpoint[1], 2).offset == 2
    assert engine.flush(NOW, 60.0, REFERENCE).checkpoint is None  # nothing pending since
    _apply(engine, _record(3, _reading(3, 4)))
    assert engine.flush(NOW, 60.0, REFERENCE).acks == [3]  # due since the last checkpoint, not flush


def test_a_flush_hands_out_windows_then_derived_ratios_then_producer_activity() -> None:
    engine = _engine()
    _apply(engine, _record(0, _reading(0, 1), _reading(1, 2)))
    # Two hours later on event time: the first minute closes within the same flush, after
    # its running value (a consumer keeps the last, which must be the final one).
    _apply(engine, _record(1, _reading(2, 120)))
    publication = engine.flush(NOW, 0.0, REFERENCE)
    docs = [json.loads(value) for _, value in publication.updates]
    groups = [
        "windows" if d["indicator"] in ("energy_consumed_kwh", "emissions_kgco2e")
        else "derived" if d["indicator"] == "renewable_share_ratio" or "per_inhabitant" in d["indicator"]
        else "activity" if d["indicator"].startswith("producer_")
        else d["indicator"]
        for d in docs
    ]  # fmt: skip
    assert groups == sorted(groups, key=["windows", "derived", "activity"].index)
    assert set(groups) == {"windows", "derived", "activity"}
    first_minute = [
        d["final"]
        for d in docs
        if (d["indicator"], d["window"], d["window_start"])
        == ("energy_consumed_kwh", "1m", "2026-11-30T10:01:00Z")
    ]
    assert first_minute == [False, True]
    assert all(
        key.decode().startswith(doc["indicator"] + "|")
        for (key, _), doc in zip(publication.updates, docs, strict=True)
    )
    assert {d["updated_at"] for d in docs} == {"2026-11-30T12:00:00Z"}
    # The checkpoint is the state the flush left: nothing pending, the last offset read.
    assert publication.checkpoint is not None
    assert decode(publication.checkpoint[1], 2).windows.touched == set()
    assert decode(publication.checkpoint[1], 2).offset == 1


def test_registered_devices_are_counted_once_per_version_of_the_reference_data() -> None:
    registered = RegisteredDevices()
    counts = registered(REFERENCE)
    assert registered(REFERENCE) is counts
    assert sum(counts.values()) == len(REFERENCE.devices)
    fewer = ReferenceData(
        REFERENCE.communes, REFERENCE.factors, dict(list(REFERENCE.devices.items())[:1]),
        REFERENCE.bounds, REFERENCE.loaded_from,
    )  # fmt: skip
    assert sum(registered(fewer).values()) == 1  # a reload is seen at once
