"""The validation engine: every reading of every raw record comes out exactly once (accepted,
duplicate or dead-lettered, as the counters say), by commune partition, stamped with its
source, and nothing raises out of ``apply``."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

import pytest

from reference.loader import load_reference
from schemas.batch_envelope import CONTENT_TYPE_HEADER, FRAMES_CONTENT_TYPE, encode_frames
from schemas.catalogue import DEAD_LETTER_TOPIC, valid_topic
from schemas.partition_key import commune_partition
from streams.validation import engine as validation_engine
from streams.validation.deduplication import RecentEventIds
from streams.validation.engine import (
    SOURCE_OFFSET_HEADER,
    SOURCE_PARTITION_HEADER,
    Outgoing,
    ValidationEngine,
)
from streams.validation.raw_records import RawRecord
from streams.validation.stage import ValidationCounters
from tests.energy_readings import energy_reading, meter_topic

REF = load_reference()
NOW = datetime.now(UTC)
PARTITIONS = 4
FRAMES = [(CONTENT_TYPE_HEADER, FRAMES_CONTENT_TYPE)]
NESTED = b"[" * 100_000 + b"]" * 100_000


def _engine(counters: ValidationCounters | None = None) -> ValidationEngine:
    return ValidationEngine(
        REF, RecentEventIds(horizon=60), counters or ValidationCounters(), PARTITIONS, clock=lambda: NOW
    )


def _reading(event_id: str, **changes: Any) -> bytes:
    return json.dumps(energy_reading("partner-1", event_id, NOW, **changes)).encode()


def _in_17094(event_id: str) -> bytes:
    """A reading of a meter registered in commune 17094, another partition than 17300's."""
    return _reading(event_id, meter_id="elec-17094-0101", commune="17094")


def _frames(offset: int, *payloads: bytes) -> RawRecord:
    """The bridge's record of ``payloads``, each on its own meter's topic (as the broker lets
    a meter publish); a payload with no meter or commune on a topic of the family."""
    value = encode_frames([(meter_topic(payload), payload) for payload in payloads])
    return RawRecord("zc.raw.energy", 2, offset, None, value, FRAMES)


def _single(offset: int, value: bytes, topic: str = "zc.raw.energy") -> RawRecord:
    return RawRecord(topic, 2, offset, b"partner-1", value, [])


def _events(outgoing: Outgoing) -> list[str]:
    return [event["event_id"] for event in json.loads(outgoing.value)]


def test_every_reading_of_a_mixed_batch_comes_out_once_as_the_counters_say(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real_check = validation_engine.check_payload

    def check_with_a_bug(*args: Any) -> Any:
        if b"boom" in args[1]:
            raise ZeroDivisionError("a bug of ours")
        return real_check(*args)

    monkeypatch.setattr(validation_engine, "check_payload", check_with_a_bug)
    records = [
        _frames(10, _reading("a"), _in_17094("b"), _reading("bad", quantity=-1), _reading("a"), b"not json"),
        _single(11, json.dumps([json.loads(_reading("c")), {"event_id": "d"}]).encode()),
        _single(12, NESTED),
        _single(13, b"{not json"),
        _frames(14, _reading("f"), _reading("boom")),
        _single(15, _reading("e"), topic="zc.raw.weather"),
    ]
    counters = ValidationCounters()
    engine = _engine(counters)
    routed = [engine.apply(record) for record in records]
    for each in routed:
        engine.count(each)

    valid = [event for each in routed for outgoing in each.valid for event in _events(outgoing)]
    dead = [json.loads(outgoing.value) for each in routed for outgoing in each.dead]
    assert sorted(valid) == ["a", "b", "c", "f"]
    where = [(letter["origin"]["offset"], letter["origin"]["index"]) for letter in dead]
    assert where == [(10, 2), (10, 4), (11, 1), (12, None), (13, None), (14, 1), (15, None)]
    assert counters.received == 12 and counters.balanced()
    # Under each meter's producer in the registry, whatever producer id the payloads claim.
    assert counters.accepted == {"enedis": 3, "replay-uci-household": 1}
    assert counters.duplicates == {"enedis": 1}
    assert sum(counters.dead_lettered.values()) == len(dead) == 7
    assert counters.reasons["internal_error"] == 2 and counters.reasons["json_invalid"] == 3


def test_a_record_whose_handling_raises_is_one_internal_error_dead_letter_not_an_exception(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(record: RawRecord) -> list[Any]:
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(validation_engine, "unpack", broken)
    value = b"[" + _reading("a") + b"," + _reading("b") + b"]"
    with caplog.at_level(logging.ERROR, logger=validation_engine.__name__):
        routed = _engine().apply(_single(7, value))
    assert routed.valid == [] and len(routed.outcomes) == 1
    (outgoing,) = routed.dead
    letter = json.loads(outgoing.value)
    assert (outgoing.topic, outgoing.key, outgoing.partition) == (DEAD_LETTER_TOPIC, b"energy", None)
    assert letter["errors"][0]["type"] == "internal_error" and letter["reason"].startswith("RecursionError")
    assert letter["payload"].encode() == value and letter["origin"]["offset"] == 7
    assert len([r for r in caplog.records if r.levelno >= logging.ERROR]) == 1


def test_accepted_events_go_to_their_communes_partition_keyed_by_commune_in_arrival_order() -> None:
    record = _frames(41, _reading("a1"), _in_17094("b1"), _reading("a2"), _in_17094("b2"))
    routed = _engine().apply(record)
    assert commune_partition("17300", PARTITIONS) != commune_partition("17094", PARTITIONS)
    by_key = {outgoing.key: outgoing for outgoing in routed.valid}
    assert by_key.keys() == {b"17300", b"17094"} and routed.dead == []
    for commune, events in (("17300", ["a1", "a2"]), ("17094", ["b1", "b2"])):
        outgoing = by_key[commune.encode()]
        assert outgoing.topic == valid_topic("energy")
        assert outgoing.partition == commune_partition(commune, PARTITIONS)
        assert _events(outgoing) == events


def test_valid_records_carry_their_raw_records_partition_and_offset() -> None:
    routed = _engine().apply(_frames(41, _reading("a"), _in_17094("b"), _reading("bad", quantity=-1)))
    assert len(routed.valid) == 2 and len(routed.dead) == 1
    for outgoing in routed.valid:
        assert outgoing.headers == {SOURCE_OFFSET_HEADER: b"41", SOURCE_PARTITION_HEADER: b"2"}
    assert routed.records == routed.valid + routed.dead


def test_apply_counts_nothing_until_the_shell_counts_what_it_sent() -> None:
    counters = ValidationCounters()
    engine = _engine(counters)
    record = _frames(1, _reading("a"), _reading("b"))
    engine.apply(record)
    assert counters.received == 0
    # The producer refused what it became: counted once, as the dead letter that replaces it.
    engine.count(engine.reject_whole(record, RuntimeError("refused")))
    assert counters.received == 1 and counters.reasons == {"internal_error": 1} and counters.balanced()
