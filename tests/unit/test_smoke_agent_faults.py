"""An invalid smoke reading, or a point InfluxDB refuses, is dead-lettered verbatim with its
origin and reason, instead of being only logged (issue 19)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest

from schemas.dead_letter import DeadLetter, Origin
from schemas.smoke_reading import SmokeReading
from streams.smoke_agent import read_smoke_reading, refused_letter, send_dead_letter

NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)
ORIGIN = Origin(transport="kafka", topic="zc.smoke.readings", partition=1, offset=9, key="m1")


def test_a_valid_reading_is_read() -> None:
    reading = read_smoke_reading(
        b'{"device_id": "m1", "value": 2.5, "time": "2026-01-01T00:00:00Z"}', ORIGIN, NOW
    )
    assert isinstance(reading, SmokeReading) and reading.value == 2.5


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b'{"device_id": "x", "value": "NaN-ish", "time": "yesterday"}', "value:"),
        (b"not json", "Invalid JSON"),
        (None, "Invalid JSON"),
        (b'{"device_id": "m1", "value": 1, "time": "2026-01-01T00:00:00"}', "time:"),
    ],
)
def test_an_invalid_reading_becomes_a_dead_letter_with_its_payload_origin_and_reason(
    value: bytes | None, reason: str
) -> None:
    letter = read_smoke_reading(value, ORIGIN, NOW)
    assert isinstance(letter, DeadLetter)
    assert letter.original_payload() == (value or b"")
    assert letter.family == "smoke" and letter.stage == "smoke" and letter.origin == ORIGIN
    assert letter.reason.startswith(reason), letter.reason


def test_a_refused_point_names_influxdb_s_answer() -> None:
    letter = refused_letter(b'{"device_id": "m1"}', ORIGIN, 422, "field type conflict", NOW)
    assert letter.errors[0].type == "influxdb_422" and letter.reason == "field type conflict"


async def test_the_letter_is_delivered_on_the_dead_letter_topic_keyed_by_family() -> None:
    delivered: list[tuple[bytes, bytes]] = []

    async def deliver(key: bytes, value: bytes) -> None:
        delivered.append((key, value))

    letter = read_smoke_reading(b"not json", ORIGIN, NOW)
    assert isinstance(letter, DeadLetter)
    assert await send_dead_letter(letter, deliver) is True
    ((key, value),) = delivered
    assert key == b"smoke" and DeadLetter.model_validate_json(value) == letter


async def test_a_letter_that_cannot_be_sent_is_logged_with_its_offset_and_never_raises(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def refuse(key: bytes, value: bytes) -> None:
        raise RuntimeError("broker away")

    letter = read_smoke_reading(b"not json", ORIGIN, NOW)
    assert isinstance(letter, DeadLetter)
    with caplog.at_level(logging.ERROR, logger="streams.smoke_agent"):
        assert await send_dead_letter(letter, refuse) is False
    assert any("zc.smoke.readings[1]@9" in r.getMessage() for r in caplog.records)
