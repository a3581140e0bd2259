"""Batch frames keep every payload byte for byte, with its source topic."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.batch_envelope import MalformedBatch, decode_frames, encode_frames
from schemas.device_topics import device_topic, parse_device_topic

topics = st.text(min_size=1, max_size=60).filter(lambda t: len(t.encode()) < 65535)


@given(st.lists(st.tuples(topics, st.binary(max_size=2000)), max_size=50))
def test_frames_round_trip_any_bytes(items: list[tuple[str, bytes]]) -> None:
    assert list(decode_frames(encode_frames(items))) == items


def test_truncated_record_is_refused_with_the_position() -> None:
    value = encode_frames([("zc/17300/energy/m1", b'{"a": 1}')])
    with pytest.raises(MalformedBatch, match="overruns"):
        list(decode_frames(value[:-2]))


def test_device_topic_round_trip() -> None:
    topic = device_topic("17300", "energy", "elec-17300-0001")
    parsed = parse_device_topic(topic)
    assert parsed is not None
    assert (parsed.commune, parsed.family, parsed.device_id) == ("17300", "energy", "elec-17300-0001")


@pytest.mark.parametrize("topic", ["zc/17300/energy", "other/17300/energy/m1", "zc//energy/m1", "zc/a/b/c/d"])
def test_topics_outside_the_tree_are_recognised(topic: str) -> None:
    assert parse_device_topic(topic) is None
