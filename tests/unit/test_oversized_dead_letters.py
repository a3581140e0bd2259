"""A payload Mosquitto takes always fits in a dead letter, whatever its bytes: control
characters, 6 bytes each as JSON text, go as base64 when the text would not fit in a record
of zc.deadletter (issue 19, found by tests/faults/test_hostile_payloads.py: 9.9 MiB of them
made a 62 MB dead letter Kafka refused, and the reading was lost)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from aiokafka.errors import MessageSizeTooLargeError

from bridge import kafka_refusals
from reference.loader import ReferenceStore
from schemas.batch_envelope import CONTENT_TYPE_HEADER, FRAMES_CONTENT_TYPE, encode_frames
from schemas.catalogue import DEAD_LETTER_MAX_BYTES, DEAD_LETTER_TOPIC
from schemas.dead_letter import DeadLetter
from schemas.dead_letters import fitting_json
from streams.validation.deduplication import RecentEventIds
from streams.validation.engine import ValidationEngine
from streams.validation.raw_records import RawRecord
from streams.validation.stage import ValidationCounters

TOPIC = "zc/17028/energy/golden-17028-0008"
NOW = datetime(2026, 12, 6, 6, 0, tzinfo=UTC)
MOSQUITTO_PAYLOAD_LIMIT = 10 * 1024 * 1024


@pytest.mark.parametrize("payload", [b"\x01" * int(9.9 * 1024 * 1024), b"\x00\x1f" * (5 * 1024 * 1024 - 8)])
def test_validation_dead_letters_a_payload_of_control_characters_in_a_record_that_fits(
    payload: bytes,
) -> None:
    engine = ValidationEngine(ReferenceStore(), RecentEventIds(horizon=60), ValidationCounters(), 3)
    record = RawRecord(
        "zc.raw.energy", 1, 42, None, encode_frames([(TOPIC, payload)]),
        [(CONTENT_TYPE_HEADER, FRAMES_CONTENT_TYPE)],
    )  # fmt: skip
    (outgoing,) = engine.apply(record).records
    assert outgoing.topic == DEAD_LETTER_TOPIC
    assert len(outgoing.value) <= DEAD_LETTER_MAX_BYTES - 64 * 1024
    letter = DeadLetter.model_validate_json(outgoing.value)
    assert letter.original_payload() == payload and letter.errors[0].type == "payload_too_large"
    assert letter.payload_encoding == "base64" and letter.origin.topic == TOPIC


def test_the_bridge_dead_letters_a_refused_reading_of_control_characters_in_a_record_that_fits() -> None:
    payload = b"\x01" * (MOSQUITTO_PAYLOAD_LIMIT - 16)
    (letter,) = kafka_refusals.refused_readings(
        "energy", encode_frames([(TOPIC, payload)]), MessageSizeTooLargeError(), NOW
    )
    value = fitting_json(letter)
    assert len(value) <= DEAD_LETTER_MAX_BYTES - 64 * 1024
    kept = DeadLetter.model_validate_json(value)
    assert kept.original_payload() == payload and kept.errors[0].type == "kafka_refused"


def test_a_dead_letter_that_fits_keeps_its_payload_as_text() -> None:
    (letter,) = kafka_refusals.refused_readings(
        "energy", encode_frames([(TOPIC, b'{"quantity": "\x01"}' * 1000)]), MessageSizeTooLargeError(), NOW
    )
    kept = DeadLetter.model_validate_json(fitting_json(letter))
    assert kept.payload_encoding == "utf-8" and kept.payload == letter.payload
