"""What Kafka refuses for what a record is, and the dead letters of the readings it carried.

Most Kafka errors pass (a broker away, a leader moving, a credential or an ACL being fixed):
the bridge retries them, holding its MQTT acknowledgements, and nothing is lost. A few are
about the record itself and no retry can pass them: a reading near Mosquitto's 10 MiB limit
makes a record above the broker's ``message.max.bytes``. Retried forever, such a record
stopped every acknowledgement, and after a restart the persistent session delivered it again
(issue 19). Its readings go to the dead-letter topic instead, whose records may be larger.
"""

from __future__ import annotations

from datetime import datetime

from aiokafka.errors import (
    CorruptRecordException,
    InvalidTimestampError,
    MessageSizeTooLargeError,
    OutOfOrderSequenceNumber,
    RecordListTooLargeError,
    RecordTooLargeError,
)

from schemas.batch_envelope import MalformedBatch, decode_frames
from schemas.dead_letter import DeadLetter, FieldProblem, Origin
from schemas.dead_letters import dead_letter

# Errors about the record itself, never about the cluster's state.
RECORD_REFUSALS: tuple[type[Exception], ...] = (
    MessageSizeTooLargeError,
    RecordTooLargeError,
    RecordListTooLargeError,
    CorruptRecordException,
    InvalidTimestampError,
)


def breaks_the_sequence(error: BaseException) -> bool:
    """True when the idempotent producer that got ``error`` must be replaced: the broker refused
    a batch after the producer had numbered it (a record refused for what it is), or says the
    producer's numbers are out of step. aiokafka keeps counting past a refused batch, and
    cannot recover (sender.py: OutOfOrderSequenceNumber is not retriable)."""
    return refuses_the_record(error) or isinstance(error, OutOfOrderSequenceNumber)


def refuses_the_record(error: BaseException) -> bool:
    """True when sending the same record again can never succeed."""
    return isinstance(error, RECORD_REFUSALS)


def refused_readings(family: str, record: bytes, error: BaseException, now: datetime) -> list[DeadLetter]:
    """One dead letter per reading of a refused frames record, each with its MQTT topic."""
    problem = FieldProblem(
        path="",
        type="kafka_refused",
        message=f"Kafka refused the record carrying this reading ({type(error).__name__}: {error}); "
        f"the record was {len(record)} bytes",
    )
    try:
        frames = list(decode_frames(record))
    except MalformedBatch:  # not the bridge's frames: the record is the reading
        frames = [("", record)]
    return [
        dead_letter(
            family=family,
            stage="bridge",
            raw=payload,
            problems=[problem],
            origin=Origin(transport="mqtt", topic=mqtt_topic),
            now=now,
        )
        for mqtt_topic, payload in frames
    ]
