"""A record on zc.valid.<family> the indicator stage cannot read is dead-lettered verbatim with
its origin and reason, counted, and sent before the agent goes on (issue 19): it used to be
acknowledged and lost."""

from __future__ import annotations

import base64
import json
import logging
from collections import Counter
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from schemas.dead_letter import DeadLetter
from streams.indicators.agent import dead_letter_unreadable, read_valid_record
from streams.validation.agent import VALID_ARRAY
from tests.energy_readings import energy_reading

NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)


def _message(value: bytes | None, offset: int = 41) -> SimpleNamespace:
    return SimpleNamespace(topic="zc.valid.energy", partition=2, offset=offset, key=b"17028", value=value)


class DeadLetterTopic:
    """Records what is delivered; ``refuse`` makes every delivery raise."""

    def __init__(self, refuse: bool = False) -> None:
        self.delivered: list[tuple[bytes, bytes]] = []
        self.refuse = refuse

    async def __call__(self, key: bytes, value: bytes) -> None:
        if self.refuse:
            raise RuntimeError("broker refused the dead letter")
        self.delivered.append((key, value))

    def letters(self) -> list[DeadLetter]:
        return [DeadLetter.model_validate_json(value) for _, value in self.delivered]


async def _dead_letter(value: bytes | None, topic: DeadLetterTopic, counters: Counter[str]) -> None:
    with pytest.raises(ValueError) as refused:
        read_valid_record("energy", value)
    await dead_letter_unreadable("energy", _message(value), refused.value, counters, topic, NOW)


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


async def test_a_dead_letter_that_cannot_be_sent_is_counted_and_never_raises(
    caplog: pytest.LogCaptureFixture,
) -> None:
    counters: Counter[str] = Counter()
    with caplog.at_level(logging.ERROR, logger="streams.indicators.agent"):
        await _dead_letter(b"garbage", DeadLetterTopic(refuse=True), counters)
    assert counters == {"unreadable_records": 1, "dead_letters_not_sent": 1}
    assert any("zc.valid.energy[2]@41 not dead-lettered" in r.getMessage() for r in caplog.records)
