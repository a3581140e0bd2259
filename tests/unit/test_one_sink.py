"""One sink per deployment (sinks/one_sink.py): a sink starts once its consumer group has no
live member, waiting a little for a killed sink's session to end."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka.errors import GroupCoordinatorNotAvailableError

from config.kafka_access import KafkaAccess
from sinks import one_sink
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


class Described:
    """DescribeGroups' response for one group: (error_code, group, state, ..., members)."""

    def __init__(self, error_code: int, members: list[tuple[str, str, str]]) -> None:
        self.groups = [(error_code, "zerocarbon-influx-sink", "Stable", "consumer", "range", members)]


def test_a_coordinator_not_ready_is_asked_again_never_read_as_an_empty_group(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Just after a broker start: the request fails, then the group's error says the coordinator
    is loading (14), then the answer names the live member."""
    answers: list[object] = [
        GroupCoordinatorNotAvailableError(),
        [Described(14, [])],
        [Described(0, [("member-1", "influx-sink", "/127.0.0.1")])],
    ]

    async def describe(kafka: KafkaAccess, group: str) -> list[Described]:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer  # type: ignore[return-value]

    monkeypatch.setattr(one_sink, "_describe", describe)
    members = asyncio.run(
        one_sink.group_members(KafkaAccess("127.0.0.1:1"), "zerocarbon-influx-sink", retry_seconds=0)
    )
    assert members == [GroupMember("influx-sink", "/127.0.0.1")] and answers == []


def test_a_coordinator_never_ready_raises_in_the_end(monkeypatch: pytest.MonkeyPatch) -> None:
    async def describe(kafka: KafkaAccess, group: str) -> list[Described]:
        raise GroupCoordinatorNotAvailableError()

    monkeypatch.setattr(one_sink, "_describe", describe)
    with pytest.raises(GroupCoordinatorNotAvailableError):
        asyncio.run(
            one_sink.group_members(KafkaAccess("127.0.0.1:1"), "g", wait_seconds=0.05, retry_seconds=0.01)
        )
