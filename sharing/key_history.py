"""Which pseudonym key versions the platform has used, as zc.sharing-audit remembers them.

A lost key file must not quietly become a new key numbered 1 again: the same meters would get
new pseudonyms under the same ``ps1:`` prefix, and a party holding copies made under the lost
key could not tell the two apart. Every release the audit records names the key version it
was made under (``pseudonym_key``), so the stage refuses to start without its key file once
the platform has shared (the key is restored from its backup), and ``zerocarbon agreements
rotate-key`` starts a lost key's successor above every version used.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer

from config.kafka_access import KafkaAccess
from schemas.catalogue import SHARING_AUDIT_TOPIC
from stack.errors import StackError
from streams.kafka_admin import topic_ends

LOOKBACK = 500
"""Audit records read back per partition: releases are written every batch with records, so
the newest ones name the key in use."""


@dataclass(frozen=True, slots=True)
class KeyHistory:
    """The releases among the audit's recent records, and the highest key version they name.
    (Grants, revocations and expiries are audited too: an agreement granted before the stage
    first starts is no release, and no key existed.)"""

    releases: int
    highest_version: int

    @property
    def shared_before(self) -> bool:
        return self.releases > 0

    def version_after_loss(self) -> int:
        """A version no pseudonym was made under: above every one named, and above 1 once
        anything was shared. Releases audited before they named their key (before this field)
        name none: a platform that rotated keys then may need a higher version than this."""
        return max(self.highest_version, 1 if self.shared_before else 0) + 1


def read_history(values: list[bytes]) -> KeyHistory:
    """The releases among the audit records ``values`` and the highest ``pseudonym_key`` they
    name (0: none, as in releases audited before the key was)."""
    releases = highest = 0
    for value in values:
        try:
            record = json.loads(value)
        except ValueError:
            continue
        if not isinstance(record, dict) or record.get("event") != "release":
            continue
        releases += 1
        version = record.get("pseudonym_key")
        if isinstance(version, int) and not isinstance(version, bool):
            highest = max(highest, version)
    return KeyHistory(releases, highest)


async def key_history(kafka: KafkaAccess, timeout: float = 30.0) -> KeyHistory:
    """Read the newest ``LOOKBACK`` records of each partition of the audit, whole or not at all:
    a version missed would let a new key take it (StackError when the read does not end)."""
    ends = await topic_ends(kafka, [SHARING_AUDIT_TOPIC])
    consumer = AIOKafkaConsumer(
        **kafka.client_options(), enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        consumer.assign(list(ends))
        beginnings = await consumer.beginning_offsets(list(ends))
        values: list[bytes] = []
        deadline = time.monotonic() + timeout
        for tp, end in ends.items():
            if end <= beginnings[tp]:
                continue
            consumer.seek(tp, max(beginnings[tp], end - LOOKBACK))
            while await consumer.position(tp) < end:
                if time.monotonic() > deadline:
                    raise StackError(
                        f"{SHARING_AUDIT_TOPIC} could not be read to its end within {timeout:.0f} s: the "
                        "pseudonym key versions used before are not known"
                    )
                batch = await consumer.getmany(tp, timeout_ms=2000)
                values += [r.value for records in batch.values() for r in records if r.value]
    finally:
        await consumer.stop()
    return read_history(values)
