"""Unpack a raw Kafka record into the payloads it carries, each with where it came from.

A raw record is one of: a batch of frames from the bridge (header
``content-type: application/vnd.zc.frames``), a JSON array of events from a partner, or a
single JSON event. Whatever it is, every payload comes out with its origin; a record that
cannot be unpacked comes out whole, to be dead-lettered as it is.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from schemas.batch_envelope import CONTENT_TYPE_HEADER, FRAMES_CONTENT_TYPE, MalformedBatch, decode_frames
from schemas.dead_letter import Origin


@dataclass(frozen=True, slots=True)
class RawRecord:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: Sequence[tuple[str, bytes]]


@dataclass(frozen=True, slots=True)
class Unpacked:
    payload: bytes
    origin: Origin
    problem: str | None = None  # set when the record itself could not be unpacked


def _is_frames(headers: Sequence[tuple[str, bytes]]) -> bool:
    return any(name == CONTENT_TYPE_HEADER and value == FRAMES_CONTENT_TYPE for name, value in headers)


def unpack(record: RawRecord) -> list[Unpacked]:
    """Every payload of the record, in order."""
    key = record.key.decode(errors="replace") if record.key else None

    def kafka_origin(index: int | None = None) -> Origin:
        return Origin.model_construct(
            transport="kafka", topic=record.topic, partition=record.partition,
            offset=record.offset, key=key, index=index,
        )  # fmt: skip

    if _is_frames(record.headers):
        try:
            frames = list(decode_frames(record.value))
        except MalformedBatch as exc:
            return [Unpacked(record.value, kafka_origin(), f"malformed batch record: {exc}")]
        return [
            Unpacked(
                payload,
                Origin.model_construct(
                    transport="mqtt",
                    topic=topic,
                    partition=record.partition,
                    offset=record.offset,
                    key=None,
                    index=index,
                ),
            )
            for index, (topic, payload) in enumerate(frames)
        ]
    if record.value.lstrip()[:1] == b"[":
        try:
            items = json.loads(record.value)
        except ValueError:
            return [Unpacked(record.value, kafka_origin())]  # validation names the JSON error
        # Each element is re-serialised: faithful, though not byte-identical to the array's text.
        return [
            Unpacked(json.dumps(item, ensure_ascii=False).encode(), kafka_origin(index))
            for index, item in enumerate(items)
        ]
    return [Unpacked(record.value, kafka_origin())]
