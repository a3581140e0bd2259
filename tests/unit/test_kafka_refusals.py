"""Which Kafka errors no retry can pass, and the dead letters of a record Kafka refused: one per
reading it carried, verbatim, with its MQTT topic and Kafka's reason."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest
from aiokafka.errors import (
    KafkaConnectionError,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    NotLeaderForPartitionError,
    RecordTooLargeError,
    TopicAuthorizationFailedError,
)

from bridge.kafka_refusals import refused_readings, refuses_the_record
from schemas.batch_envelope import encode_frames

NOW = datetime(2026, 12, 6, 3, 0, tzinfo=UTC)


@pytest.mark.parametrize("error", [MessageSizeTooLargeError(), RecordTooLargeError()])
def test_a_record_too_large_is_refused_for_good(error: Exception) -> None:
    assert refuses_the_record(error)


@pytest.mark.parametrize(
    "error",
    [
        KafkaConnectionError(),  # the broker away
        KafkaTimeoutError(),
        NotLeaderForPartitionError(),  # a leader moving
        TopicAuthorizationFailedError(),  # an ACL being fixed: hold, do not dead-letter
        RuntimeError("anything else"),
    ],
)
def test_errors_about_the_cluster_are_retried(error: Exception) -> None:
    assert not refuses_the_record(error)


def test_each_reading_of_a_refused_record_gets_its_own_dead_letter() -> None:
    frames = [("zc/17300/energy/m-1", b'{"n": 1}'), ("zc/17300/energy/m-2", b"\xff\x00binary")]
    record = encode_frames(frames)
    letters = refused_readings("energy", record, MessageSizeTooLargeError(), NOW)
    assert [letter.origin.topic for letter in letters] == [topic for topic, _ in frames]
    assert [letter.original_payload() for letter in letters] == [payload for _, payload in frames]
    assert letters[1].payload_encoding == "base64"
    assert letters[1].payload == base64.b64encode(frames[1][1]).decode()
    for letter in letters:
        assert letter.stage == "bridge" and letter.family == "energy"
        (problem,) = letter.errors
        assert problem.type == "kafka_refused"
        assert "MessageSizeTooLargeError" in problem.message and f"{len(record)} bytes" in problem.message


def test_a_refused_record_that_is_not_frames_is_one_reading() -> None:
    (letter,) = refused_readings("energy", b"\x00\x05abc", RecordTooLargeError(), NOW)
    assert letter.original_payload() == b"\x00\x05abc"
