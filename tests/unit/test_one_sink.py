"""One sink per deployment (sinks/one_sink.py): a sink starts once its consumer group has no
live member, waiting a little for a killed sink's session to end."""

from __future__ import annotations

import asyncio

from config.kafka_access import KafkaAccess
from sinks.one_sink import GroupMember, another_sink

OTHER = GroupMember(client_id="aiokafka-0.12.0", host="/10.0.0.7")


class Members:
    """A group whose members are ``OTHER`` for the first ``polls`` looks, then none."""

    def __init__(self, polls: int) -> None:
        self.polls, self.looks = polls, 0

    async def __call__(self, kafka: KafkaAccess, group: str) -> list[GroupMember]:
        self.looks += 1
        return [OTHER] if self.looks <= self.polls else []


def _another_sink(members: Members, gone_seconds: float) -> str | None:
    kafka = KafkaAccess(bootstrap="127.0.0.1:9")  # never reached: members_of answers
    return asyncio.run(another_sink(kafka, "zc-sink", gone_seconds, poll_seconds=0.01, members_of=members))


def test_an_empty_group_lets_the_sink_start_at_once() -> None:
    members = Members(polls=0)
    assert _another_sink(members, gone_seconds=5) is None
    assert members.looks == 1


def test_a_stopped_sink_whose_session_ends_meanwhile_lets_the_sink_start() -> None:
    members = Members(polls=3)
    assert _another_sink(members, gone_seconds=5) is None
    assert members.looks == 4


def test_a_member_that_stays_refuses_the_start_and_names_it() -> None:
    refused = _another_sink(Members(polls=10_000), gone_seconds=0.05)
    assert refused is not None
    assert "'zc-sink'" in refused and "aiokafka-0.12.0 on /10.0.0.7" in refused
    assert "one sink per deployment" in refused
