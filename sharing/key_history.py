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
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer

from config.kafka_access import KafkaAccess
from schemas.catalogue import SHARING_AUDIT_TOPIC
from streams.kafka_admin import topic_ends

LOOKBACK = 500
"""Audit records read back per partition: releases are written every batch with records, so
the newest ones name the key in use."""


@dataclass(frozen=True, slots=True)
class KeyHistory:
    """How many records the audit holds, and the highest key version its recent ones name."""

    audit_records: int
    highest_version: int

    @property
    def shared_before(self) -> bool:
        return self.audit_records > 0

    def version_after_loss(self) -> int:
        """A version no pseudonym was made under: above every one named, and above 1 once
        anything was shared (audit records older than the key field name none)."""
        return max(self.highest_version, 1 if self.shared_before else 0) + 1


def highest_key_version(values: list[bytes]) -> int:
    """The highest ``pseudonym_key`` the audit records ``values`` name (0: none)."""
    highest = 0
    for value in values:
        try:
            version = json.loads(value).get("pseudonym_key")
        except (ValueError, AttributeError):
            continue
        if isinstance(version, int) and not isinstance(version, bool):
            highest = max(highest, version)
    return highest


async def key_history(kafka: KafkaAccess) -> KeyHistory:
    """Read the audit's size and the newest ``LOOKBACK`` records of each partition."""
    ends = await topic_ends(kafka, [SHARING_AUDIT_TOPIC])
    consumer = AIOKafkaConsumer(**kafka.client_options(), enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(list(ends))
        beginnings = await consumer.beginning_offsets(list(ends))
        values: list[bytes] = []
        for tp, end in ends.items():
            if end <= beginnings[tp]:
                continue
            consumer.seek(tp, max(beginnings[tp], end - LOOKBACK))
            while await consumer.position(tp) < end:
                batch = await consumer.getmany(tp, timeout_ms=2000)
                if not batch:
                    break
                values += [r.value for records in batch.values() for r in records if r.value]
        records = sum(end - beginnings[tp] for tp, end in ends.items())
    finally:
        await consumer.stop()
    return KeyHistory(records, highest_key_version(values))
