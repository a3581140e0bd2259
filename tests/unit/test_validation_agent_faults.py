"""Whatever goes wrong with one raw record, it is dead-lettered whole with a reason and counted:
nothing escapes the validation agent, where faust would skip the message (issue 19)."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka.errors import MessageSizeTooLargeError

from reference.loader import ReferenceStore
from schemas.catalogue import BATCH_FRAMING_BYTES, DEAD_LETTER_TOPIC, topic_max_bytes, valid_topic
from schemas.dead_letters import LETTER_FITS
from streams.validation import agent as validation_agent
from streams.validation import engine as validation_engine
from streams.validation.agent import handle_record, refusing_oversized
from streams.validation.deduplication import RecentEventIds
from streams.validation.engine import Outgoing, ValidationEngine
from streams.validation.raw_records import RawRecord, unpack
from streams.validation.stage import ValidationCounters
from tests.energy_readings import energy_reading

NESTED = b"[" * 100_000 + b"]" * 100_000
STORE = ReferenceStore()


def _record(value: bytes, offset: int = 7) -> RawRecord:
    return RawRecord("zc.raw.energy", 0, offset, b"partner-1", value, [])


def _reading(event_id: str) -> dict[str, Any]:
    return energy_reading("partner-1", event_id, datetime.now(UTC))


class Producer:
    """Records what the agent sends; ``refuse`` names topics whose sends raise."""

    def __init__(self, refuse: frozenset[str] = frozenset()) -> None:
        self.sent: list[tuple[str, bytes]] = []
        self.refuse = refuse

    async def __call__(self, outgoing: Outgoing) -> None:
        if outgoing.topic in self.refuse:
            raise RuntimeError(f"broker refused a record for {outgoing.topic}")
        self.sent.append((outgoing.topic, outgoing.value))

    def on(self, topic: str) -> list[bytes]:
        return [value for t, value in self.sent if t == topic]


async def _handle(record: RawRecord, producer: Producer, counters: ValidationCounters) -> None:
    await handle_record(ValidationEngine(STORE, RecentEventIds(horizon=60), counters, 3), record, producer)


def test_a_deeply_nested_array_comes_out_whole_instead_of_raising() -> None:
    (item,) = unpack(_record(NESTED))
    assert item.payload == NESTED and item.origin.offset == 7 and item.origin.index is None


def test_an_array_with_a_lone_surrogate_comes_out_whole_instead_of_raising() -> None:
    value = b'[{"event_id": "\\ud800"}]'
    (item,) = unpack(_record(value))
    assert item.payload == value


async def test_a_deeply_nested_array_is_dead_lettered_with_its_reason_and_counted() -> None:
    producer, counters = Producer(), ValidationCounters()
    await _handle(_record(NESTED), producer, counters)
    (letter,) = [json.loads(v) for v in producer.on(DEAD_LETTER_TOPIC)]
    assert "recursion limit exceeded" in letter["reason"]
    assert letter["payload"].encode() == NESTED
    assert letter["origin"] == {
        "transport": "kafka", "topic": "zc.raw.energy", "partition": 0, "offset": 7,
        "key": "partner-1", "index": None,
    }  # fmt: skip
    assert counters.received == 1 and counters.balanced()


async def test_an_unexpected_exception_dead_letters_the_whole_record_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(record: RawRecord) -> list[Any]:
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(validation_engine, "unpack", broken)
    value = json.dumps([_reading("a"), _reading("b")]).encode()
    producer, counters = Producer(), ValidationCounters()
    with caplog.at_level(logging.ERROR, logger=validation_engine.__name__):
        await _handle(_record(value), producer, counters)
    (letter,) = [json.loads(v) for v in producer.on(DEAD_LETTER_TOPIC)]
    assert letter["reason"].startswith("RecursionError")
    assert letter["errors"][0]["type"] == "internal_error"
    assert letter["payload"].encode() == value and letter["producer_id"] == "partner-1"
    assert producer.on(valid_topic("energy")) == []
    assert counters.received == 1 and counters.reasons == {"internal_error": 1} and counters.balanced()
    assert len([r for r in caplog.records if r.levelno >= logging.ERROR]) == 1


async def test_a_record_the_producer_refuses_is_dead_lettered_whole_not_counted_accepted() -> None:
    value = json.dumps([_reading("a"), _reading("b")]).encode()
    producer, counters = Producer(refuse=frozenset({valid_topic("energy")})), ValidationCounters()
    await _handle(_record(value), producer, counters)
    (letter,) = [json.loads(v) for v in producer.on(DEAD_LETTER_TOPIC)]
    assert "broker refused" in letter["reason"] and letter["payload"].encode() == value
    assert counters.received == 1 and sum(counters.accepted.values()) == 0 and counters.balanced()


async def test_a_valid_record_above_its_topics_limit_is_refused_before_the_producer_numbers_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    value = json.dumps([_reading("a"), _reading("b")]).encode()
    small = len(value) // 2 + BATCH_FRAMING_BYTES  # the valid array is longer than its raw record

    def limit(topic: str) -> int:
        return small if topic.startswith("zc.valid.") else topic_max_bytes(topic)

    monkeypatch.setattr(validation_agent, "topic_max_bytes", limit)
    producer, counters = Producer(), ValidationCounters()
    engine = ValidationEngine(STORE, RecentEventIds(horizon=60), counters, 3)
    await handle_record(engine, _record(value), refusing_oversized(producer))
    assert producer.on(valid_topic("energy")) == []
    (letter,) = [json.loads(v) for v in producer.on(DEAD_LETTER_TOPIC)]
    assert letter["reason"].startswith("MessageSizeTooLargeError") and "zc.valid.energy" in letter["reason"]
    assert letter["payload"].encode() == value
    assert counters.received == 1 and counters.reasons == {"internal_error": 1} and counters.balanced()


async def test_the_size_guard_passes_a_record_at_its_topics_limit_and_any_dead_letter_that_fits() -> None:
    producer = Producer()
    send = refusing_oversized(producer)
    topic = valid_topic("energy")
    room = topic_max_bytes(topic) - BATCH_FRAMING_BYTES - len(b"commune") - len(b"h") - len(b"1")
    await send(Outgoing(topic, 0, b"commune", b"x" * room, {"h": b"1"}))
    with pytest.raises(MessageSizeTooLargeError, match=r"zc\.valid\.energy"):
        await send(Outgoing(topic, 0, b"commune", b"x" * (room + 1), {"h": b"1"}))
    await send(Outgoing(DEAD_LETTER_TOPIC, None, b"environment", b"x" * LETTER_FITS, None))
    assert [len(value) for _, value in producer.sent] == [room, LETTER_FITS]


async def test_nothing_escapes_even_when_the_dead_letter_cannot_be_sent() -> None:
    producer = Producer(refuse=frozenset({valid_topic("energy"), DEAD_LETTER_TOPIC}))
    counters = ValidationCounters()
    await _handle(_record(NESTED), producer, counters)
    assert producer.sent == [] and counters.received == 1 and counters.balanced()


async def test_valid_and_invalid_events_of_one_array_each_go_their_way() -> None:
    value = json.dumps([_reading("a"), _reading("b") | {"quantity": -1}, _reading("c")]).encode()
    producer, counters = Producer(), ValidationCounters()
    await _handle(_record(value), producer, counters)
    (array,) = [json.loads(v) for v in producer.on(valid_topic("energy"))]
    assert [event["event_id"] for event in array] == ["a", "c"]
    (letter,) = [json.loads(v) for v in producer.on(DEAD_LETTER_TOPIC)]
    assert letter["origin"]["index"] == 1 and letter["reason"].startswith("quantity:")
    # Counted under the meter's producer in the registry, not the payload's "partner-1".
    assert counters.received == 3 and counters.accepted == {"enedis": 2} and counters.balanced()
