"""The batch envelope: many readings in one Kafka record, each kept byte for byte.

faust handles about 10 000 Kafka messages per second per worker whatever the work per
message, so the bridge packs the readings that arrive within a short linger into one
record per (family, partition). Each reading keeps its exact bytes (invalid ones too, so
that validation can dead-letter them verbatim) and the MQTT topic it came from.

Wire format, announced by the record header ``content-type: application/vnd.zc.frames``:
a sequence of frames, each ``u16 topic length | topic (UTF-8) | u32 payload length |
payload``, integers big-endian. Partners may also publish a single event (a JSON object)
or a JSON array of events with no header; see docs/contracts.md.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator

FRAMES_CONTENT_TYPE = b"application/vnd.zc.frames"
CONTENT_TYPE_HEADER = "content-type"
_HEAD = struct.Struct(">H")
_LEN = struct.Struct(">I")


class MalformedBatch(ValueError):
    """The record claims to be frames but its bytes do not parse as such."""


def encode_frames(items: Iterable[tuple[str, bytes]]) -> bytes:
    """Pack (source topic, payload) pairs into one record value."""
    parts: list[bytes] = []
    for topic, payload in items:
        t = topic.encode()
        parts += (_HEAD.pack(len(t)), t, _LEN.pack(len(payload)), payload)
    return b"".join(parts)


def decode_frames(value: bytes) -> Iterator[tuple[str, bytes]]:
    """Unpack a record value into (source topic, payload) pairs, in order."""
    view = memoryview(value)
    pos, end = 0, len(value)
    while pos < end:
        if pos + 2 > end:
            raise MalformedBatch(f"truncated frame header at byte {pos}")
        (tlen,) = _HEAD.unpack_from(view, pos)
        pos += 2
        if pos + tlen + 4 > end:
            raise MalformedBatch(f"truncated topic at byte {pos}")
        topic = bytes(view[pos : pos + tlen]).decode("utf-8", errors="replace")
        pos += tlen
        (plen,) = _LEN.unpack_from(view, pos)
        pos += 4
        if pos + plen > end:
            raise MalformedBatch(f"payload of {plen} bytes overruns the record at byte {pos}")
        yield topic, bytes(view[pos : pos + plen])
        pos += plen
