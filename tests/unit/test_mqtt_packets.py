"""The MQTT codec of the bridge and the load publisher: what it cuts out of a byte stream is
exactly what was sent, in MQTT 5 and 3.1.1, and every PUBACK is counted once."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from schemas.mqtt_packets import (
    CONNACK,
    CONNECT,
    MESSAGE_EXPIRY_INTERVAL,
    MQTT_5,
    MQTT_311,
    PINGREQ_PACKET,
    PUBACK,
    PUBLISH,
    RECEIVE_MAXIMUM,
    SESSION_EXPIRY_INTERVAL,
    MqttProtocolError,
    Publish,
    count_pubacks,
    decode_connack,
    decode_suback,
    encode_connect,
    encode_pubacks,
    encode_publish,
    encode_publish_prepared,
    encode_subscribe,
    encode_topic,
    publish_properties,
    read_properties,
    split_packets,
)

topics = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=40)
messages = st.lists(
    st.tuples(topics, st.binary(max_size=300), st.integers(min_value=0, max_value=0xFFFF)), max_size=30
)


def _feed(stream: bytes, cuts: list[int], version: int) -> list[Publish]:
    """What a connection delivers when ``stream`` arrives cut at ``cuts`` (as _Wire does)."""
    received: list[Publish] = []
    rest = b""
    bounds = [0, *sorted(c % (len(stream) + 1) for c in cuts), len(stream)]
    for start, end in itertools.pairwise(bounds):
        data = rest + stream[start:end]
        publishes, others, used = split_packets(data, version)
        assert others == []
        received.extend(publishes)
        rest = data[used:]
    assert rest == b""
    return received


@given(messages, st.lists(st.integers(min_value=0), max_size=20), st.sampled_from([MQTT_5, MQTT_311]))
def test_publishes_come_out_whole_and_in_order_however_the_stream_is_cut(
    sent: list[tuple[str, bytes, int]], cuts: list[int], version: int
) -> None:
    stream = b"".join(encode_publish(t, p, pid, version=version) for t, p, pid in sent)
    assert _feed(stream, cuts, version) == [Publish(t, p, pid) for t, p, pid in sent]


@pytest.mark.parametrize("version", [MQTT_5, MQTT_311])
@pytest.mark.parametrize("size", [0, 120, 121, 16_375, 16_376, 2_097_140, 2_097_160])
def test_remaining_lengths_on_every_varint_boundary(size: int, version: int) -> None:
    payload = bytes(range(256)) * (size // 256) + bytes(size % 256)
    packet = encode_publish("zc/17300/energy/m1", payload, 7, version=version)
    assert split_packets(packet, version) == ([Publish("zc/17300/energy/m1", payload, 7)], [], len(packet))
    assert split_packets(packet[:-1], version) == ([], [], 0)  # one byte short: wait for it


def test_a_publish_is_qos1_with_a_packet_id_and_qos0_without() -> None:
    assert encode_publish("a/b", b"{}", 7, version=MQTT_5) == b"\x32\x0a\x00\x03a/b\x00\x07\x00{}"
    assert encode_publish("a/b", b"{}", 7, version=MQTT_311) == b"\x32\x09\x00\x03a/b\x00\x07{}"
    assert encode_publish("a/b", b"{}", 0, version=MQTT_5) == b"\x30\x08\x00\x03a/b\x00{}"
    assert encode_publish("a/b", b"{}", 0, version=MQTT_311) == b"\x30\x07\x00\x03a/b{}"


@given(topics, st.binary(max_size=20_000), st.integers(min_value=0, max_value=0xFFFF))
def test_a_publish_with_its_topic_encoded_once_is_the_same_packet(
    topic: str, payload: bytes, packet_id: int
) -> None:
    name = encode_topic(topic)
    assert encode_publish_prepared(name, payload, packet_id, publish_properties()) == encode_publish(
        topic, payload, packet_id, version=MQTT_5
    )
    assert encode_publish_prepared(name, payload, packet_id) == encode_publish(
        topic, payload, packet_id, version=MQTT_311
    )


def test_a_message_expiry_is_an_mqtt5_publish_property() -> None:
    packet = encode_publish("a/b", b"{}", 7, version=MQTT_5, message_expiry=600)
    body = packet[2:]
    assert packet[0] >> 4 == PUBLISH and body[:7] == b"\x00\x03a/b\x00\x07"
    props, k = read_properties(body, 7)
    assert props == {MESSAGE_EXPIRY_INTERVAL: 600} and body[k:] == b"{}"
    assert split_packets(packet, MQTT_5) == ([Publish("a/b", b"{}", 7)], [], len(packet))
    with pytest.raises(ValueError, match=r"3\.1\.1 has no message expiry"):
        encode_publish("a/b", b"{}", 7, version=MQTT_311, message_expiry=600)


def test_a_topic_longer_than_an_mqtt_string_is_refused() -> None:
    assert encode_topic("é") == b"\x00\x02\xc3\xa9"  # the length counts bytes, not characters
    with pytest.raises(ValueError, match="at most 65 535 bytes"):
        encode_topic("a" * 65_536)


def test_pubacks_are_four_bytes_each_in_the_given_order() -> None:
    acks = encode_pubacks([1, 300, 65535])
    assert acks == b"\x40\x02\x00\x01\x40\x02\x01\x2c\x40\x02\xff\xff"
    _, others, used = split_packets(acks, MQTT_5)
    assert used == len(acks)
    assert [(p.kind, p.body) for p in others] == [
        (PUBACK, b"\x00\x01"),
        (PUBACK, b"\x01\x2c"),
        (PUBACK, b"\xff\xff"),
    ]


def test_a_persistent_mqtt5_connect_carries_its_session_expiry_and_receive_maximum() -> None:
    packet = encode_connect(
        "bridge-1",
        version=MQTT_5,
        keepalive=30,
        clean_start=False,
        session_expiry=604800,
        receive_maximum=20_000,
    )
    _, [connect], _ = split_packets(packet, MQTT_5)
    body = connect.body
    assert connect.kind == CONNECT
    assert body[:7] == b"\x00\x04MQTT\x05"
    assert body[7] == 0x00  # clean start off, no credentials
    assert body[8:10] == b"\x00\x1e"
    props, k = read_properties(body, 10)
    assert props == {SESSION_EXPIRY_INTERVAL: 604800, RECEIVE_MAXIMUM: 20_000}
    assert body[k:] == b"\x00\x08bridge-1"


def test_a_clean_mqtt5_connect_with_credentials_has_no_default_properties() -> None:
    packet = encode_connect(
        "dev-1", version=MQTT_5, keepalive=60, clean_start=True, username="meter", password="secret"
    )
    _, [connect], _ = split_packets(packet, MQTT_5)
    assert packet[0] == CONNECT << 4
    assert connect.body == b"\x00\x04MQTT\x05\xc2\x00\x3c\x00\x00\x05dev-1\x00\x05meter\x00\x06secret"


def test_a_persistent_mqtt311_connect_has_clean_session_off_and_no_properties() -> None:
    packet = encode_connect(
        "b", version=MQTT_311, keepalive=10, clean_start=False, username="u", password="p"
    )
    _, [connect], _ = split_packets(packet, MQTT_311)
    assert connect.body == b"\x00\x04MQTT\x04\xc0\x00\x0a\x00\x01b\x00\x01u\x00\x01p"


def test_subscribe_asks_qos1_and_in_mqtt5_no_retained_replay_on_resubscribe() -> None:
    v5 = encode_subscribe(1, ["zc/+/+/+"], version=MQTT_5)
    assert v5 == b"\x82\x0e\x00\x01\x00\x00\x08zc/+/+/+\x11"
    assert encode_subscribe(9, ["a"], version=MQTT_311) == b"\x82\x06\x00\x09\x00\x01a\x01"


def test_properties_are_read_as_paho_writes_them() -> None:
    props = Properties(PacketTypes.CONNACK)
    props.ServerKeepAlive = 45
    props.ReceiveMaximum = 100
    props.MaximumPacketSize = 1 << 20
    props.AssignedClientIdentifier = "auto-1"
    props.ReasonString = "fine"
    props.UserProperty = ("k", "v")
    read, end = read_properties(props.pack(), 0)
    assert end == len(props.pack())
    assert read[0x13] == 45 and read[0x21] == 100 and read[0x27] == 1 << 20
    assert read[0x12] == "auto-1" and read[0x1F] == "fine" and read[0x26] == (b"k", b"v")


def test_connack_and_suback() -> None:
    props = Properties(PacketTypes.CONNACK)
    props.ServerKeepAlive = 60
    connack = decode_connack(b"\x01\x00" + props.pack(), MQTT_5)
    assert connack.session_present and not connack.refused and connack.properties == {0x13: 60}
    assert decode_connack(b"\x00\x87\x00", MQTT_5).refused  # 0x87 not authorized
    assert decode_connack(b"\x00\x05", MQTT_311).reason_code == 5
    assert decode_suback(b"\x00\x01\x00\x01\x80", MQTT_5) == (1, [1, 0x80])
    assert decode_suback(b"\x00\x02\x01", MQTT_311) == (2, [1])
    assert CONNACK == 2


FOUR = b"\x40\x02\x00\x01"  # a PUBACK of a success
FIVE = b"\x40\x03\x00\x02\x10"  # MQTT 5: success, but no matching subscribers
PINGRESP_PACKET = b"\xd0\x00"
LONG = b"\xe0\x81\x01" + bytes(129)  # a DISCONNECT with a two-byte remaining length


@pytest.mark.parametrize(
    ("data", "pubacks", "used"),
    [
        (b"", 0, 0),
        (FOUR * 3 + FOUR[:2], 3, 12),
        (FIVE * 3 + FIVE[:4], 3, 15),
        (FIVE * 2 + FOUR, 3, 14),  # a 4-byte tail after a run of 5-byte ones
        (FOUR * 2 + FIVE, 3, 13),
        (PINGRESP_PACKET + FIVE + FOUR, 2, 11),
        (FOUR + PINGRESP_PACKET, 1, 6),
        (FOUR + PINGREQ_PACKET[:1], 1, 4),
        (FOUR + LONG + FIVE + FOUR[:3], 2, 4 + len(LONG) + 5),
        (FIVE + LONG[:100], 1, 5),
    ],
)
def test_pubacks_are_counted_in_runs_and_in_mixed_packets(data: bytes, pubacks: int, used: int) -> None:
    assert count_pubacks(data, MQTT_5) == (pubacks, used)


@given(
    st.lists(st.sampled_from([FOUR, FIVE, PINGRESP_PACKET, LONG]), max_size=60),
    st.lists(st.integers(min_value=0), max_size=10),
    st.sampled_from([MQTT_5, MQTT_311]),
)
def test_every_puback_is_counted_once_however_the_reads_are_cut(
    packets: list[bytes], cuts: list[int], version: int
) -> None:
    stream = b"".join(packets)
    counted = 0
    rest = b""
    bounds = [0, *sorted(c % (len(stream) + 1) for c in cuts), len(stream)]
    for start, end in itertools.pairwise(bounds):
        data = rest + stream[start:end]
        count, used = count_pubacks(data, version)
        counted += count
        rest = data[used:]
    assert rest == b""
    assert counted == sum(1 for p in packets if p in (FOUR, FIVE))


@pytest.mark.parametrize(
    ("packet", "complaint"),
    [
        (b"\x34\x05\x00\x01a\x00\x01", "QoS 2"),
        (b"\x30\xff\xff\xff\xff\x01", "longer than 4 bytes"),
        (b"\x32\x04\x00\x09ab", "overrun"),
        (b"\x30\x04\x00\x02\xff\xfe", "not UTF-8"),
    ],
)
def test_bytes_that_are_not_our_mqtt_are_a_protocol_error(packet: bytes, complaint: str) -> None:
    with pytest.raises(MqttProtocolError, match=complaint):
        split_packets(packet, MQTT_5)
