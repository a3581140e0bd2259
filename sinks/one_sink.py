"""One sink per deployment: a second `zerocarbon sink` on the same consumer group refuses to start.

Two sinks in one group split zc.indicators between them, and every rebalance hands partitions
from one to the other while the first may still hold their points (in memory, in its disk
buffer while InfluxDB is away): written later, an older value of a series would overwrite the
newer one the second sink wrote. Both would also publish the territory's figures. So a sink
starts only once its group has no live member. A sink killed without leaving keeps its
membership until its session times out (aiokafka's default, 10 s): a supervisor restarting
it at once would be refused, so the start waits that long for the group to empty first.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from config.kafka_access import KafkaAccess

log = logging.getLogger(__name__)
MEMBERS_GONE_SECONDS = 15.0
"""aiokafka's session timeout (10 s) and a margin: how long a killed sink's membership may last."""
COORDINATOR_WAIT_SECONDS = 60.0
"""How long a group's coordinator may be unavailable or loading: a broker just started loads
__consumer_offsets first (the demo's sink failed with GroupCoordinatorNotAvailableError)."""
# DescribeGroups' per-group errors that say "ask again": COORDINATOR_LOAD_IN_PROGRESS,
# COORDINATOR_NOT_AVAILABLE, NOT_COORDINATOR. Read as "no member", they would let a second sink in.
COORDINATOR_NOT_READY = frozenset({14, 15, 16})


@dataclass(frozen=True)
class GroupMember:
    client_id: str
    host: str


async def group_members(
    kafka: KafkaAccess, group: str, wait_seconds: float = COORDINATOR_WAIT_SECONDS, retry_seconds: float = 0.5
) -> list[GroupMember]:
    """The live members of consumer group ``group`` (none: empty, or unknown to Kafka). A member
    killed without leaving stays until its session times out. A coordinator not ready yet is
    asked again for up to ``wait_seconds``, then its error is raised."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_seconds
    while True:
        try:
            responses = await _describe(kafka, group)
        except KafkaError as exc:
            if not exc.retriable or loop.time() >= deadline:
                raise
            log.info("consumer group %s: its coordinator is not ready (%r); asking again", group, exc)
            await asyncio.sleep(retry_seconds)
            continue
        errors = {
            described[0] for response in responses for described in response.groups if described[1] == group
        }
        if not errors & COORDINATOR_NOT_READY:
            break
        if loop.time() >= deadline:
            raise RuntimeError(
                f"consumer group {group}: its coordinator was not ready for {wait_seconds:.0f} s"
            )
        await asyncio.sleep(retry_seconds)
    # DescribeGroups v0-v3: (error_code, group, state, protocol_type, protocol, members, ...),
    # a member (member_id, client_id, client_host, metadata, assignment).
    return [
        GroupMember(client_id=member[1], host=member[2])
        for response in responses
        for described in response.groups
        if described[1] == group and not described[0]
        for member in described[5]
    ]


async def _describe(kafka: KafkaAccess, group: str) -> list[Any]:
    admin = AIOKafkaAdminClient(**kafka.client_options())
    await admin.start()
    try:
        responses: list[Any] = await admin.describe_consumer_groups([group])
    finally:
        await admin.close()
    return responses


async def another_sink(
    kafka: KafkaAccess,
    group: str,
    members_gone_seconds: float = MEMBERS_GONE_SECONDS,
    poll_seconds: float = 1.0,
    members_of: Callable[[KafkaAccess, str], Awaitable[list[GroupMember]]] = group_members,
) -> str | None:
    """None once ``group`` has no live member; why this sink may not start if one is still
    there after ``members_gone_seconds``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + members_gone_seconds
    said = False
    while members := await members_of(kafka, group):
        if loop.time() >= deadline:
            held_by = ", ".join(f"{m.client_id} on {m.host}" for m in members)
            return (
                f"another sink reads consumer group {group!r} ({held_by}): one sink per deployment, "
                "as two would overwrite each other's newer values with older ones. Stop it first, "
                "or give this one its own ZC_SINK_GROUP and InfluxDB buckets"
            )
        if not said:
            log.info(
                "consumer group %s has %d member(s): waiting up to %.0f s for a stopped sink's "
                "session to end", group, len(members), members_gone_seconds,
            )  # fmt: skip
            said = True
        await asyncio.sleep(poll_seconds)
    return None
