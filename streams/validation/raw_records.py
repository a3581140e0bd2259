"""Unpack a raw Kafka record into the payloads it carries, each with where it came from.

A raw record is one of: a batch of frames from the bridge (header
``content-type: application/vnd.zc.frames``), a JSON array of events from a partner, or a
single JSON event. Whatever it is, every payload comes out with its origin; a record that
cannot be unpacked comes out whole, to be dead-lettered as it is.

A partner's array is parsed with pydantic-core, as validation parses each event: it refuses
nesting deeper than a few hundred levels and lone surrogates with a ``ValueError``, where
``json.loads`` raises ``RecursionError`` (or hands back text that cannot be encoded again),
which would escape the agent and lose the record.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from pydantic_core import from_json

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
    """One payload of a raw record; ``mqtt_topic`` is the reading's own topic when the bridge
    framed it, ``index`` its place in the record (None: the record is the payload)."""

    payload: bytes
    record: RawRecord
    index: int | None = None
    mqtt_topic: str | None = None
    problem: str | None = None  # set when the record itself could not be unpacked

    @property
    def origin(self) -> Origin:
        """Where the payload came from; built on demand, because only a dead letter needs it."""
        if self.mqtt_topic is None:
            return record_origin(self.record, self.index)
        return Origin.model_construct(
            transport="mqtt", topic=self.mqtt_topic, partition=self.record.partition,
            offset=self.record.offset, key=None, index=self.index,
        )  # fmt: skip


def _is_frames(headers: Sequence[tuple[str, bytes]]) -> bool:
    return any(name == CONTENT_TYPE_HEADER and value == FRAMES_CONTENT_TYPE for name, value in headers)


def record_origin(record: RawRecord, index: int | None = None) -> Origin:
    """Where the record (or its ``index``-th element) came from: its Kafka topic, partition, offset."""
    key = record.key.decode(errors="replace") if record.key else None
    return Origin.model_construct(
        transport="kafka", topic=record.topic, partition=record.partition,
        offset=record.offset, key=key, index=index,
    )  # fmt: skip


def unpack(record: RawRecord) -> list[Unpacked]:
    """Every payload of the record, in order."""
    if _is_frames(record.headers):
        try:
            frames = list(decode_frames(record.value))
        except MalformedBatch as exc:
            return [Unpacked(record.value, record, problem=f"malformed batch record: {exc}")]
        return [Unpacked(payload, record, index, topic) for index, (topic, payload) in enumerate(frames)]
    if record.value.lstrip()[:1] == b"[":
        try:
            items = from_json(record.value)
            # Each element is re-serialised: faithful, though not byte-identical to the array's text.
            payloads = [json.dumps(item, ensure_ascii=False).encode() for item in items]
        except ValueError:  # not JSON, nested too deeply, a lone surrogate, a huge number...
            return [Unpacked(record.value, record)]  # validation names the JSON error
        return [Unpacked(payload, record, index) for index, payload in enumerate(payloads)]
    return [Unpacked(record.value, record)]
