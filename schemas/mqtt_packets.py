"""The MQTT 5 / 3.1.1 packets our two clients exchange with Mosquitto, as bytes, and back.

One codec for both ends of the broker: the bridge's QoS 1 subscription
(``bridge/mqtt_subscriber.py``) and the raw-socket load publisher
(``sensors/qos1_socket_publisher.py``); neither goes through paho, whose per-message objects
and thread crossings were most of their time (bench/README.md). A chunk of the socket is cut
into packets in one pass, a PUBLISH becomes a plain tuple, a batch of PUBACKs is one write.
Only what these clients need is covered: CONNECT/CONNACK, SUBSCRIBE/SUBACK, PUBLISH (QoS 0
and 1), PUBACK, PINGREQ/PINGRESP and DISCONNECT (OASIS MQTT 5.0 and 3.1.1, sections 2 and 3).
"""

from __future__ import annotations

import struct
from typing import NamedTuple

MQTT_311 = 4
MQTT_5 = 5

CONNECT, CONNACK, PUBLISH, PUBACK = 1, 2, 3, 4
SUBSCRIBE, SUBACK, PINGREQ, PINGRESP, DISCONNECT = 8, 9, 12, 13, 14

PINGREQ_PACKET = b"\xc0\x00"
DISCONNECT_PACKET = b"\xe0\x00"  # MQTT 5: no reason code = 0x00, normal disconnection

# MQTT 5 property identifiers used here (section 2.2.2.2).
MESSAGE_EXPIRY_INTERVAL = 0x02
SESSION_EXPIRY_INTERVAL = 0x11
RECEIVE_MAXIMUM = 0x21
SERVER_KEEP_ALIVE = 0x13
REASON_STRING = 0x1F

_PUBACK = struct.Struct(">BBH")
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")

# Value types of every MQTT 5 property, to skip or read any property a broker sends.
_BYTE_PROPS = frozenset((0x01, 0x17, 0x19, 0x24, 0x25, 0x28, 0x29, 0x2A))
_U16_PROPS = frozenset((0x13, 0x21, 0x22, 0x23))
_U32_PROPS = frozenset((0x02, 0x11, 0x18, 0x27))
_STRING_PROPS = frozenset((0x03, 0x08, 0x12, 0x15, 0x1A, 0x1C, 0x1F))
_BINARY_PROPS = frozenset((0x09, 0x16))
_VARINT_PROPS = frozenset((0x0B,))
_PAIR_PROPS = frozenset((0x26,))


class MqttProtocolError(Exception):
    """The broker sent bytes that are not the MQTT we speak; the connection must be dropped."""


class Publish(NamedTuple):
    """One received PUBLISH: its topic, its payload, and the packet id to acknowledge (0: QoS 0)."""

    topic: str
    payload: bytes
    packet_id: int


class ControlPacket(NamedTuple):
    """Any other packet: its type, its flags and its body."""

    kind: int
    flags: int
    body: bytes


# -- encoding -------------------------------------------------------------------------------
def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | 0x80 if value else byte)
        if not value:
            return bytes(out)


def _string(text: str) -> bytes:
    raw = text.encode()
    if len(raw) > 0xFFFF:
        raise ValueError(f"an MQTT string holds at most 65 535 bytes, not {len(raw)}")
    return _U16.pack(len(raw)) + raw


def _packet(first_byte: int, body: bytes) -> bytes:
    return bytes((first_byte,)) + _varint(len(body)) + body


def encode_connect(
    client_id: str,
    *,
    version: int,
    keepalive: int,
    clean_start: bool,
    session_expiry: int = 0,
    receive_maximum: int = 0,
    username: str | None = None,
    password: str | None = None,
) -> bytes:
    """CONNECT, with credentials if given; with MQTT 5, the session expiry and receive maximum
    as properties when they are not the defaults (0: the session ends with the connection)."""
    flags = (0x02 if clean_start else 0) | (0x80 if username is not None else 0)
    flags |= 0x40 if password is not None else 0
    body = _string("MQTT") + bytes((version, flags)) + _U16.pack(keepalive)
    if version == MQTT_5:
        props = b""
        if session_expiry:
            props += bytes((SESSION_EXPIRY_INTERVAL,)) + _U32.pack(session_expiry)
        if receive_maximum:
            props += bytes((RECEIVE_MAXIMUM,)) + _U16.pack(min(receive_maximum, 0xFFFF))
        body += _varint(len(props)) + props
    body += _string(client_id)
    if username is not None:
        body += _string(username)
    if password is not None:
        body += _string(password)
    return _packet(CONNECT << 4, body)


def encode_subscribe(packet_id: int, filters: list[str], *, version: int) -> bytes:
    """SUBSCRIBE at QoS 1 to every filter. With MQTT 5, retained messages are sent only for a
    subscription that did not exist yet (retain handling 1): resubscribing after a reconnect
    does not replay them."""
    body = _U16.pack(packet_id)
    options = 0x01 | (0x10 if version == MQTT_5 else 0)
    if version == MQTT_5:
        body += b"\x00"  # no properties
    for topic_filter in filters:
        body += _string(topic_filter) + bytes((options,))
    return _packet(SUBSCRIBE << 4 | 0x02, body)


def encode_pubacks(packet_ids: list[int]) -> bytes:
    """PUBACKs in the given order (success: the reason code may be omitted in MQTT 5)."""
    pack = _PUBACK.pack
    return b"".join([pack(0x40, 2, pid) for pid in packet_ids])


def encode_topic(topic: str) -> bytes:
    """A topic name as a PUBLISH carries it (length first): a publisher encodes it once per topic."""
    return _string(topic)


def publish_properties(message_expiry: int | None = None) -> bytes:
    """An MQTT 5 PUBLISH's properties, length first: none, or a Message Expiry Interval in
    seconds, after which the broker drops a message no session has taken."""
    if message_expiry is None:
        return b"\x00"
    return bytes((5, MESSAGE_EXPIRY_INTERVAL)) + _U32.pack(message_expiry)


def encode_publish(
    topic: str, payload: bytes, packet_id: int, *, version: int, message_expiry: int | None = None
) -> bytes:
    """A QoS 1 PUBLISH (QoS 0 when ``packet_id`` is 0), as a device sends it."""
    if version == MQTT_5:
        properties = publish_properties(message_expiry)
    elif message_expiry is not None:
        raise ValueError("MQTT 3.1.1 has no message expiry: publish with MQTT 5 or without one")
    else:
        properties = b""
    return encode_publish_prepared(encode_topic(topic), payload, packet_id, properties)


def encode_publish_prepared(
    topic_name: bytes, payload: bytes, packet_id: int, properties: bytes = b""
) -> bytes:
    """``encode_publish`` with the topic already encoded (``encode_topic``) and, for MQTT 5, the
    properties too (``publish_properties``; b"" in 3.1.1): the load publisher's per-message path."""
    first = 0x32 if packet_id else 0x30  # PUBLISH at QoS 1, or QoS 0
    pid = packet_id.to_bytes(2, "big") if packet_id else b""
    size = len(topic_name) + len(pid) + len(properties) + len(payload)
    # A reading's remaining length fits one or two bytes: no loop for those.
    if size < 0x80:
        head = bytes((first, size))
    elif size < 0x4000:
        head = bytes((first, size & 0x7F | 0x80, size >> 7))
    else:
        head = bytes((first,)) + _varint(size)
    return b"".join((head, topic_name, pid, properties, payload))


# -- decoding -------------------------------------------------------------------------------
def split_packets(data: bytes, version: int) -> tuple[list[Publish], list[ControlPacket], int]:
    """Cut ``data`` into whole packets: the PUBLISHes, the other packets, and how many bytes were
    used (the rest is the start of a packet still to come)."""
    publishes: list[Publish] = []
    others: list[ControlPacket] = []
    size = len(data)
    v5 = version == MQTT_5
    i = 0
    while size - i >= 2:
        first = data[i]
        length = data[i + 1]
        j = i + 2
        if length > 0x7F:  # a remaining length of two bytes or more: most control packets have one
            length &= 0x7F
            shift = 7
            while True:
                if j >= size:
                    return publishes, others, i
                byte = data[j]
                j += 1
                length |= (byte & 0x7F) << shift
                if byte < 0x80:
                    break
                shift += 7
                if shift > 21:
                    raise MqttProtocolError("a remaining length longer than 4 bytes")
        end = j + length
        if end > size:
            return publishes, others, i
        if first >> 4 == PUBLISH:
            publishes.append(_publish(data, first, j, end, v5))
        else:
            others.append(ControlPacket(first >> 4, first & 0x0F, data[j:end]))
        i = end
    return publishes, others, i


def count_pubacks(data: bytes, version: int) -> tuple[int, int]:
    """How many PUBACKs the whole packets at the head of ``data`` hold, and how many bytes those
    packets use (the rest is the start of a packet still to come); other packets are skipped.
    A PUBACK ends the message's flight whatever its reason code."""
    accepted, refused, used = count_puback_outcomes(data, version)
    return accepted + refused, used


def count_puback_outcomes(data: bytes, version: int) -> tuple[int, int, int]:
    """``count_pubacks`` split by outcome: (accepted, refused, bytes used). Refused: an MQTT 5
    reason code of 0x80 or more, such as 0x87 not authorized (the broker's ACLs).

    A publisher's reads are mostly runs of same-sized PUBACKs (4 bytes; 5 when Mosquitto adds
    a reason code: 0x10 no matching subscribers, or a refusal): such a run is counted with
    slice comparisons, its reason codes with two byte counts.
    """
    size = len(data)
    accepted = refused = i = 0
    for length, remaining in ((4, b"\x02"), (5, b"\x03")):
        n = size // length
        run = n * length
        if n and data[0:run:length] == b"\x40" * n and data[1:run:length] == remaining * n:
            i = run
            if length == 5:
                reasons = data[4:run:5]
                if reasons.count(b"\x10") + reasons.count(b"\x00") != n:
                    refused = sum(1 for code in reasons if code >= 0x80)
            accepted = n - refused
            break
    # Mixed reads, and a run's tail, a packet at a time: PUBACKs and PINGRESPs have a one-byte
    # remaining length, so only that byte is read; anything longer goes to split_packets.
    while size - i >= 2 and data[i + 1] < 0x80:
        end = i + 2 + data[i + 1]
        if end > size:
            return accepted, refused, i
        if data[i] >> 4 == PUBACK:
            if data[i + 1] > 2 and data[i + 4] >= 0x80:
                refused += 1
            else:
                accepted += 1
        i = end
    if size - i < 2:
        return accepted, refused, i
    _, others, used = split_packets(data[i:], version)
    for packet in others:
        if packet.kind == PUBACK:
            if len(packet.body) > 2 and packet.body[2] >= 0x80:
                refused += 1
            else:
                accepted += 1
    return accepted, refused, i + used


def _publish(data: bytes, first: int, start: int, end: int, v5: bool) -> Publish:
    try:
        return _publish_fields(data, first, start, end, v5)
    except IndexError as exc:  # a length field pointing past the bytes received
        raise MqttProtocolError("a PUBLISH whose lengths overrun the packet") from exc


def _publish_fields(data: bytes, first: int, start: int, end: int, v5: bool) -> Publish:
    qos = (first >> 1) & 0x03
    if qos > 1:
        raise MqttProtocolError(f"a QoS {qos} PUBLISH on a QoS 1 subscription")
    if end - start < 2:
        raise MqttProtocolError("a PUBLISH too short for its topic length")
    k = start + 2 + ((data[start] << 8) | data[start + 1])
    try:
        topic = data[start + 2 : k].decode()
    except UnicodeDecodeError as exc:
        raise MqttProtocolError(f"a PUBLISH topic that is not UTF-8: {exc}") from exc
    packet_id = 0
    if qos:
        packet_id = (data[k] << 8) | data[k + 1]
        k += 2
    if v5:
        props, k = _read_varint(data, k)
        k += props  # the properties of a delivered message are not needed downstream
    if k > end:
        raise MqttProtocolError(f"a PUBLISH on {topic!r} shorter than its own header")
    return Publish(topic, data[k:end], packet_id)


def _read_varint(data: bytes, k: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[k]
        k += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, k
        shift += 7
        if shift > 21:
            raise MqttProtocolError("a variable byte integer longer than 4 bytes")


def read_properties(body: bytes, k: int) -> tuple[dict[int, object], int]:
    """The MQTT 5 properties starting at ``k``, by identifier, and the offset after them."""
    length, k = _read_varint(body, k)
    end = k + length
    props: dict[int, object] = {}
    while k < end:
        ident = body[k]
        k += 1
        value: object
        if ident in _BYTE_PROPS:
            value, k = body[k], k + 1
        elif ident in _U16_PROPS:
            value, k = _U16.unpack_from(body, k)[0], k + 2
        elif ident in _U32_PROPS:
            value, k = _U32.unpack_from(body, k)[0], k + 4
        elif ident in _VARINT_PROPS:
            value, k = _read_varint(body, k)
        elif ident in _STRING_PROPS or ident in _BINARY_PROPS:
            n = _U16.unpack_from(body, k)[0]
            raw = body[k + 2 : k + 2 + n]
            value, k = (raw.decode(errors="replace") if ident in _STRING_PROPS else raw), k + 2 + n
        elif ident in _PAIR_PROPS:
            n = _U16.unpack_from(body, k)[0]
            m = _U16.unpack_from(body, k + 2 + n)[0]
            value, k = (body[k + 2 : k + 2 + n], body[k + 4 + n : k + 4 + n + m]), k + 4 + n + m
        else:
            raise MqttProtocolError(f"unknown MQTT 5 property 0x{ident:02x}")
        props[ident] = value
    if k != end:
        raise MqttProtocolError("MQTT 5 properties overrun their length")
    return props, end


class Connack(NamedTuple):
    session_present: bool
    reason_code: int
    properties: dict[int, object]

    @property
    def refused(self) -> bool:
        return self.reason_code != 0


def decode_connack(body: bytes, version: int) -> Connack:
    """CONNACK: session present, reason (MQTT 5) or return code (3.1.1), properties."""
    if len(body) < 2:
        raise MqttProtocolError("a CONNACK shorter than 2 bytes")
    props: dict[int, object] = {}
    if version == MQTT_5 and len(body) > 2:
        props, _ = read_properties(body, 2)
    return Connack(bool(body[0] & 0x01), body[1], props)


def decode_suback(body: bytes, version: int) -> tuple[int, list[int]]:
    """SUBACK: its packet id and one granted QoS or failure code (>= 0x80) per filter."""
    packet_id = _U16.unpack_from(body, 0)[0]
    k = 2
    if version == MQTT_5:
        _, k = read_properties(body, k)
    return packet_id, list(body[k:])


def decode_disconnect(body: bytes) -> tuple[int, str]:
    """A broker's MQTT 5 DISCONNECT: its reason code and reason string, if any."""
    if not body:
        return 0, ""
    reason = ""
    if len(body) > 1:
        props, _ = read_properties(body, 1)
        reason = str(props.get(REASON_STRING, ""))
    return body[0], reason
