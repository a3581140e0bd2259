"""A resumed session's redeliveries of messages the bridge already sent to Kafka are only
acknowledged; everything else, an identical message sent anew included, is forwarded
(bridge/redeliveries.py; issue 19: readings in Kafka twice after a Mosquitto restart)."""

from __future__ import annotations

from bridge.redeliveries import Redeliveries
from schemas.mqtt_packets import Publish


def reading(k: int, packet_id: int | None = None) -> Publish:
    return Publish(f"zc/17028/energy/meter-{k % 7}", f'{{"event_id":"e-{k}"}}'.encode(), packet_id or k)


def test_the_lost_acknowledgements_redelivered_first_on_the_next_connection_are_not_forwarded() -> None:
    seen = Redeliveries(keep=100)
    first = [reading(k) for k in range(1, 11)]
    assert seen.new_messages(1, first[:6]) == first[:6]
    assert seen.new_messages(1, first[6:]) == first[6:]
    # The connection drops; the broker never had the acknowledgements of 8, 9 and 10.
    again = first[7:]
    new = [reading(k) for k in range(11, 14)]
    assert seen.new_messages(2, again + new[:1]) == new[:1]
    assert seen.new_messages(2, new[1:]) == new[1:]
    assert seen.skipped == 3


def test_a_message_after_the_redeliveries_is_new_even_with_a_remembered_packet_id_and_bytes() -> None:
    seen = Redeliveries(keep=100)
    first = [reading(k) for k in range(1, 5)]
    seen.new_messages(1, first)
    new = reading(50)
    # An identical message sent again by its device, given a packet id reused by the broker,
    # after the first new message: a duplicate for validation to count, not for the bridge.
    assert seen.new_messages(2, [first[3], new, first[2]]) == [new, first[2]]


def test_a_different_message_under_a_remembered_packet_id_is_forwarded() -> None:
    seen = Redeliveries(keep=100)
    seen.new_messages(1, [reading(1), reading(2)])
    other = reading(99, packet_id=2)
    assert seen.new_messages(2, [other]) == [other]
    assert seen.skipped == 0


def test_only_the_last_messages_are_remembered() -> None:
    seen = Redeliveries(keep=4)
    first = [reading(k) for k in range(1, 11)]
    for message in first:
        seen.new_messages(1, [message])
    assert seen.new_messages(2, [first[2]]) == [first[2]]  # forgotten: forwarded again
    seen = Redeliveries(keep=4)
    for message in first:
        seen.new_messages(1, [message])
    assert seen.new_messages(2, first[6:]) == []


def test_a_redelivery_whose_acknowledgement_is_lost_again_is_recognised_on_the_connection_after() -> None:
    seen = Redeliveries(keep=100)
    seen.new_messages(1, [reading(1), reading(2)])
    assert seen.new_messages(2, [reading(2)]) == []
    # Connection 2 drops before the broker read the acknowledgement of 2: delivered a third time.
    assert seen.new_messages(3, [reading(2)]) == []
    # 1 was not delivered again on connection 2: the broker had its acknowledgement.
    assert seen.new_messages(4, [reading(1)]) == [reading(1)]
