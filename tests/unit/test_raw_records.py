"""Raw records unpack into every payload they carry, with where each came from."""

import json

from schemas.batch_envelope import CONTENT_TYPE_HEADER, FRAMES_CONTENT_TYPE, encode_frames
from streams.validation.raw_records import RawRecord, unpack

FRAMES = [(CONTENT_TYPE_HEADER, FRAMES_CONTENT_TYPE)]


def _record(value: bytes, headers: list[tuple[str, bytes]] | None = None) -> RawRecord:
    return RawRecord("zc.raw.energy", 2, 41, b"meter-1", value, headers or [])


def test_bridge_frames_keep_each_payload_and_its_mqtt_topic() -> None:
    value = encode_frames([("zc/17300/energy/m1", b'{"a": 1}'), ("zc/17300/energy/m2", b"\xff")])
    items = unpack(_record(value, FRAMES))
    assert [i.payload for i in items] == [b'{"a": 1}', b"\xff"]
    assert [(i.origin.transport, i.origin.topic, i.origin.offset, i.origin.index) for i in items] == [
        ("mqtt", "zc/17300/energy/m1", 41, 0),
        ("mqtt", "zc/17300/energy/m2", 41, 1),
    ]


def test_partner_json_array_gives_one_payload_per_element() -> None:
    items = unpack(_record(json.dumps([{"event_id": "a"}, {"event_id": "b"}]).encode()))
    assert [json.loads(i.payload)["event_id"] for i in items] == ["a", "b"]
    assert [(i.origin.transport, i.origin.partition, i.origin.index) for i in items] == [
        ("kafka", 2, 0),
        ("kafka", 2, 1),
    ]


def test_single_event_and_broken_array_come_out_whole() -> None:
    assert [i.payload for i in unpack(_record(b'{"event_id": "a"}'))] == [b'{"event_id": "a"}']
    assert [i.payload for i in unpack(_record(b"[{broken"))] == [b"[{broken"]


def test_malformed_frames_are_reported_with_the_whole_record() -> None:
    value = encode_frames([("zc/17300/energy/m1", b"x" * 10)])[:-3]
    (item,) = unpack(_record(value, FRAMES))
    assert item.payload == value and item.problem and "overruns" in item.problem
