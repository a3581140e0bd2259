"""A record on zc.valid.<family> the indicator stage cannot read is dead-lettered verbatim with
its origin and reason, counted, and delivered before the checkpoint that covers it (issue
19): it used to be acknowledged and lost."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections import Counter
from collections.abc import Awaitable
from datetime import UTC, datetime

import pytest

from schemas.dead_letter import DeadLetter
from streams.indicators.agent import deliver_dead_letters
from streams.indicators.engine import IndicatorPartition, ValidRecord, read_valid_record
from streams.validation.engine import VALID_ARRAY
from tests.contract.samples import REFERENCE
from tests.energy_readings import energy_reading

NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)


class DeadLetterTopic:
    """Records what is delivered; ``refuse`` makes every send (or every delivery) fail."""

    def __init__(self, refuse: str | None = None) -> None:
        self.delivered: list[tuple[bytes, bytes]] = []
        self.refuse = refuse

    async def __call__(self, key: bytes, value: bytes) -> Awaitable[object]:
        if self.refuse == "send":
            raise RuntimeError("producer refused the dead letter")
        delivered: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        if self.refuse == "delivery":
            delivered.set_exception(RuntimeError("broker refused the dead letter"))
        else:
            self.delivered.append((key, value))
            delivered.set_result(None)
        return delivered

    def letters(self) -> list[DeadLetter]:
        return [DeadLetter.model_validate_json(value) for _, value in self.delivered]


async def _dead_letter(value: bytes | None, topic: DeadLetterTopic, counters: Counter[str]) -> None:
    """The record at zc.valid.energy[2]@41 through the engine, its flush through the agent's delivery."""
    with pytest.raises(ValueError):
        read_valid_record("energy", value)
    engine: IndicatorPartition[int] = IndicatorPartition(
        "zc.valid.energy", 2, grace_seconds=300, checkpoint_seconds=5.0
    )
    record = ValidRecord("zc.valid.energy", 2, 41, b"17028", value)
    counters.update(engine.apply(record, REFERENCE, NOW, 41).counters)
    publication = engine.flush(NOW, 0.0, REFERENCE)
    assert publication.acks == [41]  # acknowledged with the checkpoint, once its letter is delivered
    await deliver_dead_letters(publication.dead_letters, topic, counters)


def test_a_record_written_by_validation_is_read_back() -> None:
    events = [energy_reading("partner-1", "a", NOW), energy_reading("partner-1", "b", NOW)]
    value = VALID_ARRAY["energy"].dump_json(
        VALID_ARRAY["energy"].validate_json(json.dumps(events)), by_alias=True
    )
    assert [e.event_id for e in read_valid_record("energy", value)] == ["a", "b"]  # type: ignore[attr-defined]
    assert read_valid_record("energy", None) == [] and read_valid_record("energy", b"[]") == []


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"garbage, not JSON", "Invalid JSON"),
        (b'[{"event_id": "x"}]', "0.producer_id: Field required"),  # an array, not of readings
        (b'{"quantity": 1}', "event_id: Field required"),  # one event, as written before batching
        (b"\xff\xfe binary", "Invalid JSON"),
    ],
)
async def test_an_unreadable_record_is_dead_lettered_verbatim_with_origin_and_reason(
    value: bytes, reason: str
) -> None:
    topic, counters = DeadLetterTopic(), Counter[str]()
    await _dead_letter(value, topic, counters)
    ((key, _),) = topic.delivered
    (letter,) = topic.letters()
    assert key == b"energy"
    assert letter.original_payload() == value and letter.payload_size == len(value)
    assert letter.family == "energy" and letter.stage == "indicators"
    assert letter.reason.startswith(reason) and letter.errors
    assert letter.origin.model_dump() == {
        "transport": "kafka", "topic": "zc.valid.energy", "partition": 2, "offset": 41,
        "key": "17028", "index": None,
    }  # fmt: skip
    assert counters == {"unreadable_records": 1}


async def test_a_binary_payload_is_kept_in_base64() -> None:
    topic = DeadLetterTopic()
    await _dead_letter(b"\xff\x00", topic, Counter())
    (value,) = [json.loads(v) for _, v in topic.delivered]
    assert value["payload_encoding"] == "base64" and base64.b64decode(value["payload"]) == b"\xff\x00"


@pytest.mark.parametrize("refuse", ["send", "delivery"])
async def test_a_dead_letter_that_cannot_be_sent_is_counted_and_never_raises(
    refuse: str, caplog: pytest.LogCaptureFixture
) -> None:
    counters: Counter[str] = Counter()
    with caplog.at_level(logging.ERROR, logger="streams.indicators.agent"):
        await _dead_letter(b"garbage", DeadLetterTopic(refuse=refuse), counters)
    assert counters == {"unreadable_records": 1, "dead_letters_not_sent": 1}
    # The letter is logged whole, origin included: the operator finds the record from it.
    (message,) = [r.getMessage() for r in caplog.records if "dead letter not sent" in r.getMessage()]
    assert '"topic":"zc.valid.energy","partition":2,"offset":41' in message
