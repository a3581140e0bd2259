"""Who may do what on Kafka: the principals, their roles, and each role's ACLs.

The broker runs the ``StandardAuthorizer`` with ``allow.everyone.if.no.acl.found=false``: a
principal may do only what an ACL below grants it (``stack/kafka_identities.py`` writes them;
docs/security.md explains them). The admin is a super user and needs none; it creates the
catalogue's topics, so no service holds CREATE or ALTER_CONFIGS.

| principal | may |
|---|---|
| bridge | write ``zc.raw.*`` and the dead letters (what is unreadable off MQTT) |
| worker | read ``zc.raw.*``; read and write ``zc.valid.*`` and the checkpoints; write the |
|        | indicators and the dead letters; its group and faust's own ``<worker id>-*`` topics |
| sink | read and write ``zc.indicators`` (it adds the territory's figures); write the dead |
|      | letters; its group |
| view | read the dead letters; describe the topics and the worker's and sink's groups (lag) |
| reader ``<name>`` | read ``zc.indicators`` and ``zc.causal-evidence``; groups named ``<name>*`` |
| collector | write ``zc.raw.*`` and the dead letters (what a polled source answered that we cannot use) |
| partner ``<name>`` | write the raw topic of each family its agreement names |
| sharer | read ``zc.valid.*``, ``zc.indicators`` and the agreements; write ``zc.share.*``, the audit |
|        | and the dead letters; its group |
| party ``<name>`` | read ``zc.share.<name>``, the topic its data-use agreements fill; groups ``<name>*`` |
| analyst | write ``zc.causal-evidence`` (what ``zerocarbon analyse`` found); it reads InfluxDB, not Kafka |
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from schemas.catalogue import (
    AGREEMENT_TOPIC,
    CAUSAL_EVIDENCE_TOPIC,
    CHECKPOINT_TOPIC,
    DEAD_LETTER_TOPIC,
    INDICATOR_TOPIC,
    SHARE_PREFIX,
    SHARING_AUDIT_TOPIC,
    raw_topic,
    share_topic,
    valid_topic,
)

ResourceKind = Literal["topic", "group", "cluster", "transactional_id"]
Pattern = Literal["literal", "prefixed"]
Operation = Literal["read", "write", "create", "describe", "describe_configs", "all"]

ADMIN, BRIDGE, WORKER, SINK, VIEW, READER = "admin", "bridge", "worker", "sink", "view", "reader"
COLLECTOR, SHARER, ANALYST = "collector", "sharer", "analyst"
SERVICE_PRINCIPALS = (ADMIN, BRIDGE, WORKER, SINK, VIEW, READER, COLLECTOR, SHARER, ANALYST)
"""The service's own principals (one SCRAM credential each); partners and other readers are
added by ``zerocarbon principals add``."""

DEFAULT_USERNAMES = {name: f"zc-{name}" for name in SERVICE_PRINCIPALS}
PartyKind = Literal["partner", "reader", "party"]

# Kafka's wire codes (org.apache.kafka.common.acl / resource).
RESOURCE_CODES: dict[ResourceKind, int] = {"topic": 2, "group": 3, "cluster": 4, "transactional_id": 5}
PATTERN_CODES: dict[Pattern, int] = {"literal": 3, "prefixed": 4}
OPERATION_CODES: dict[Operation, int] = {
    "all": 2,
    "read": 3,
    "write": 4,
    "create": 5,
    "describe": 8,
    "describe_configs": 10,
}
ALLOW = 3


@dataclass(frozen=True, slots=True)
class KafkaAcl:
    """One grant: ``operation`` on the resources named ``name`` (or starting with it)."""

    resource: ResourceKind
    name: str
    operation: Operation
    pattern: Pattern = "literal"


@dataclass(frozen=True, slots=True)
class KafkaLogin:
    """A SCRAM user name and its password; the password never shows in a repr or a log line."""

    username: str
    password: str = field(repr=False)


def _topic(name: str, *operations: Operation, prefixed: bool = False) -> tuple[KafkaAcl, ...]:
    pattern: Pattern = "prefixed" if prefixed else "literal"
    return tuple(KafkaAcl("topic", name, op, pattern) for op in operations)


RAW_PREFIX = raw_topic("")
VALID_PREFIX = valid_topic("")


def bridge_acls() -> tuple[KafkaAcl, ...]:
    return (*_topic(RAW_PREFIX, "write", prefixed=True), *_topic(DEAD_LETTER_TOPIC, "write"))


def collector_acls() -> tuple[KafkaAcl, ...]:
    """The pull collectors: what they collect goes through validation like a partner's."""
    return (*_topic(RAW_PREFIX, "write", prefixed=True), *_topic(DEAD_LETTER_TOPIC, "write"))


def worker_acls(worker_id: str) -> tuple[KafkaAcl, ...]:
    """The worker's: ``worker_id`` is its consumer group and the prefix of faust's own topics
    (the assignor's leader topic), which faust creates itself."""
    return (
        *_topic(RAW_PREFIX, "read", prefixed=True),
        *_topic(VALID_PREFIX, "read", "write", prefixed=True),
        *_topic(DEAD_LETTER_TOPIC, "write"),
        *_topic(INDICATOR_TOPIC, "write"),
        *_topic(CHECKPOINT_TOPIC, "read", "write"),
        *_topic(f"{worker_id}-", "all", prefixed=True),
        KafkaAcl("group", worker_id, "read"),
    )


def sink_acls(sink_group: str) -> tuple[KafkaAcl, ...]:
    return (
        *_topic(INDICATOR_TOPIC, "read", "write"),
        *_topic(DEAD_LETTER_TOPIC, "write"),
        KafkaAcl("group", sink_group, "read"),
    )


def view_acls(groups: tuple[str, ...]) -> tuple[KafkaAcl, ...]:
    """The operators' page: the dead letters' tail, and the lag of ``groups``."""
    return (
        *_topic(DEAD_LETTER_TOPIC, "read"),
        *_topic(RAW_PREFIX, "describe", prefixed=True),
        *_topic(VALID_PREFIX, "describe", prefixed=True),
        *_topic(INDICATOR_TOPIC, "describe"),
        *(KafkaAcl("group", group, "describe") for group in groups),
    )


def reader_acls(username: str) -> tuple[KafkaAcl, ...]:
    """A downstream reader: the indicators and the causal evidence, and the consumer groups
    named after it only."""
    return (
        *_topic(INDICATOR_TOPIC, "read"),
        *_topic(CAUSAL_EVIDENCE_TOPIC, "read"),
        KafkaAcl("group", username, "read", "prefixed"),
    )


def analyst_acls() -> tuple[KafkaAcl, ...]:
    """The analysis: it reads hourly indicators from InfluxDB and writes its evidence here only."""
    return _topic(CAUSAL_EVIDENCE_TOPIC, "write")


SHARING_GROUP = "zc-sharing"
"""The sharing stage's consumer group, and the prefix of any other it may use (one per deployment)."""


def sharer_acls() -> tuple[KafkaAcl, ...]:
    """The sharing stage: it reads what it may share and the agreements, writes each party's topic."""
    return (
        *_topic(VALID_PREFIX, "read", prefixed=True),
        *_topic(INDICATOR_TOPIC, "read"),
        *_topic(AGREEMENT_TOPIC, "read"),
        *_topic(SHARE_PREFIX, "write", prefixed=True),
        # Read too: the key versions it shared under (sharing/key_history.py).
        *_topic(SHARING_AUDIT_TOPIC, "read", "write"),
        *_topic(DEAD_LETTER_TOPIC, "write"),
        KafkaAcl("group", SHARING_GROUP, "read", "prefixed"),
    )


def party_acls(username: str) -> tuple[KafkaAcl, ...]:
    """A party of data-use agreements: its own topic, and consumer groups named after it."""
    return (*_topic(share_topic(username), "read"), KafkaAcl("group", username, "read", "prefixed"))


def partner_acls(families: tuple[str, ...]) -> tuple[KafkaAcl, ...]:
    """A partner: write the raw topic of each of ``families``, nothing else."""
    return tuple(acl for family in families for acl in _topic(raw_topic(family), "write"))


def service_acls(
    usernames: dict[str, str], worker_id: str, sink_group: str
) -> dict[str, tuple[KafkaAcl, ...]]:
    """Each service principal's ACLs (the admin: none, it is a super user)."""
    return {
        BRIDGE: bridge_acls(),
        WORKER: worker_acls(worker_id),
        SINK: sink_acls(sink_group),
        VIEW: view_acls((worker_id, sink_group)),
        READER: reader_acls(usernames[READER]),
        COLLECTOR: collector_acls(),
        SHARER: sharer_acls(),
        ANALYST: analyst_acls(),
    }


def username_problem(value: str) -> str | None:
    """Why ``value`` cannot be a Kafka principal's name here, or None if it can."""
    if not value or len(value) > 100:
        return "a principal's name has 1 to 100 characters"
    if not all(c.isascii() and (c.isalnum() or c in "-_.") for c in value):
        return f"the principal name {value!r} may hold only ASCII letters, digits, '-', '_' and '.'"
    return None
