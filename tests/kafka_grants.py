"""A test or benchmark that runs a service under ids of its own (a consumer group, a worker id,
a scratch topic) grants its principal those names for the run, as an operator would: the
service principals' ACLs name the configured ids only (schemas/kafka_principals.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager

from config.settings import Settings
from schemas.kafka_principals import ADMIN, KafkaAcl
from stack.kafka_identities import KafkaIdentities
from zerocarbon.component_configs import kafka_access, kafka_usernames


async def grant(settings: Settings, principal: str, acls: tuple[KafkaAcl, ...]) -> None:
    await _change(settings, principal, acls, add=True)


async def withdraw(settings: Settings, principal: str, acls: tuple[KafkaAcl, ...]) -> None:
    await _change(settings, principal, acls, add=False)


async def _change(settings: Settings, principal: str, acls: tuple[KafkaAcl, ...], add: bool) -> None:
    username = kafka_usernames(settings)[principal]
    async with KafkaIdentities(kafka_access(settings, ADMIN)) as identities:
        if add:
            await identities.grant(username, acls)
        else:
            await identities.withdraw(username, acls)


@contextmanager
def granted(settings: Settings, principal: str, acls: tuple[KafkaAcl, ...]) -> Iterator[None]:
    """``principal`` may also do ``acls`` inside the block, and no longer after it."""
    asyncio.run(_change(settings, principal, acls, add=True))
    try:
        yield
    finally:
        asyncio.run(_change(settings, principal, acls, add=False))
