"""The channels of the platform (MQTT topics and Kafka topics), described once.

Both the Kafka topic creation (``streams/kafka_admin.py``) and the AsyncAPI document
(``schemas/asyncapi.py``) read this catalogue, so the document cannot drift from what runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from schemas.device_topics import device_topic
from schemas.families import FAMILIES

DAY_MS = 86_400_000


@dataclass(frozen=True)
class Channel:
    address: str
    transport: str  # "kafka" or "mqtt"
    messages: tuple[str, ...]  # names of schemas in the exported catalogue
    description: str
    producers: tuple[str, ...]
    consumers: tuple[str, ...]
    key: str | None = None
    partitions: int | None = None
    config: dict[str, str] = field(default_factory=dict)


def raw_topic(family: str) -> str:
    return f"zc.raw.{family}"


def valid_topic(family: str) -> str:
    return f"zc.valid.{family}"


DEAD_LETTER_TOPIC = "zc.deadletter"
INDICATOR_TOPIC = "zc.indicators"
CHECKPOINT_TOPIC = "zc.indicator-checkpoints"
AGREEMENT_TOPIC = "zc.agreements"
SHARING_AUDIT_TOPIC = "zc.sharing-audit"
CAUSAL_EVIDENCE_TOPIC = "zc.causal-evidence"
SHARE_PREFIX = "zc.share."


def share_topic(party: str) -> str:
    """The one topic a party of a data-use agreement reads (made when its first agreement is granted)."""
    return f"{SHARE_PREFIX}{party}"


DEAD_LETTER_MAX_BYTES = 16 * 1024 * 1024
BROKER_MESSAGE_MAX_BYTES = 10 * 1024 * 1024
"""The broker's ``message.max.bytes`` (stack/kafka_broker.py): the limit of every topic that
sets no ``max.message.bytes`` of its own."""
BATCH_FRAMING_BYTES = 4 * 1024
"""Room kept under a topic's limit for the framing of a batch of one record (61 bytes of
batch header, a few varints): what a record's key, value and headers may not use."""


def topic_max_bytes(topic: str) -> int:
    """The largest record batch the broker accepts on ``topic``, as this catalogue declares it."""
    own_limit = topic in (DEAD_LETTER_TOPIC, CHECKPOINT_TOPIC)
    return DEAD_LETTER_MAX_BYTES if own_limit else BROKER_MESSAGE_MAX_BYTES


FAMILY_MESSAGES = {
    "energy": ("EnergyReading",),
    "environment": ("EnvironmentReading",),
    "mobility": (
        "BikeTrip",
        "BikeStationStatus",
        "TransitValidation",
        "TransitTrip",
        "TrafficCount",
        "ParkingOccupancy",
        "EvChargingSession",
        "CarsharingTrip",
    ),
}


def channels(partitions: int) -> list[Channel]:
    """Every channel with its payloads, key, partitioning, producers and consumers;
    ``partitions`` is the deployment's number for the topics keyed by commune."""
    p = partitions
    out: list[Channel] = []
    for name, family in FAMILIES.items():
        out.append(
            Channel(
                address=device_topic("{commune}", name, "{device_id}"),
                transport="mqtt",
                messages=FAMILY_MESSAGES[name],
                description=f"{family.description} published by devices (QoS 1), one reading per message",
                producers=("devices",),
                consumers=("zerocarbon bridge",),
            )
        )
        out.append(
            Channel(
                address=raw_topic(name),
                transport="kafka",
                messages=FAMILY_MESSAGES[name],
                description=f"raw {family.description}, as published (JSON); not yet validated",
                producers=("zerocarbon bridge", "partners"),
                consumers=("zerocarbon worker (validation)",),
                key="commune INSEE code (Kafka's default partitioner: a commune on one partition)",
                partitions=p,
                config={"retention.ms": str(7 * DAY_MS)},
            )
        )
        out.append(
            Channel(
                address=valid_topic(name),
                transport="kafka",
                messages=FAMILY_MESSAGES[name],
                description=f"validated {family.description}, with ingestion_time set",
                producers=("zerocarbon worker (validation)",),
                consumers=("zerocarbon worker (indicators)", "downstream services"),
                key="commune INSEE code (each record on its commune's partition, whatever the raw key)",
                partitions=p,
                config={"retention.ms": str(30 * DAY_MS)},
            )
        )
    out.append(
        Channel(
            address=INDICATOR_TOPIC,
            transport="kafka",
            messages=("IndicatorUpdate",),
            description="the latest value of every indicator series and window; compacted, so the "
            "topic holds the current value of each key",
            producers=("zerocarbon worker (indicators)",),
            consumers=("zerocarbon sinks", "downstream services"),
            key="indicator|dimensions|window|window start",
            partitions=p,
            config={"cleanup.policy": "compact", "min.compaction.lag.ms": str(60_000)},
        )
    )
    out.append(
        Channel(
            address=CHECKPOINT_TOPIC,
            transport="kafka",
            messages=(),
            description="the indicator state of each source partition and the offset it includes "
            "(internal: how results stay exact across restarts)",
            producers=("zerocarbon worker (indicators)",),
            consumers=("zerocarbon worker (indicators)",),
            key="valid topic:partition",
            partitions=1,
            # A checkpoint a second per partition supersedes the last one: segments roll at
            # 64 MB or 10 minutes, so compaction keeps what a restarted worker reads small
            # (a broker's default segment of 1 GB is never compacted while it is active).
            config={
                "cleanup.policy": "compact",
                "max.message.bytes": str(DEAD_LETTER_MAX_BYTES),
                "segment.bytes": str(64 * 1024 * 1024),
                "segment.ms": str(600_000),
            },
        )
    )
    out.append(
        Channel(
            address=AGREEMENT_TOPIC,
            transport="kafka",
            messages=(),
            description="the data-use agreements granted and revoked (ODRL documents, docs/sharing.md); "
            "compacted: the latest record of an agreement says whether it is in force",
            producers=("zerocarbon agreements grant | revoke (admin)",),
            consumers=("zerocarbon share",),
            key="agreement uid",
            partitions=1,
            config={"cleanup.policy": "compact", "min.compaction.lag.ms": str(60_000)},
        )
    )
    out.append(
        Channel(
            address=SHARING_AUDIT_TOPIC,
            transport="kafka",
            messages=(),
            description="what each party was sent, under which agreement and version (counts, time range, "
            "secret cells), and every grant, revocation and expiry; append-only, kept ten years",
            producers=("zerocarbon share", "zerocarbon agreements grant | revoke (admin)"),
            consumers=("zerocarbon agreements audit",),
            key="party",
            partitions=1,
            config={"retention.ms": str(3653 * DAY_MS)},
        )
    )
    out.append(
        Channel(
            address=CAUSAL_EVIDENCE_TOPIC,
            transport="kafka",
            messages=("CausalEvidence",),
            description="the latest causal evidence for each hypothesis and commune "
            "(docs/causal-evidence.md): evidence, not proof; compacted, so the topic holds the "
            "current record of each key",
            producers=("zerocarbon analyse",),
            consumers=("downstream services",),
            key="hypothesis|commune",
            partitions=1,
            config={"cleanup.policy": "compact", "min.compaction.lag.ms": str(60_000)},
        )
    )
    out.append(
        Channel(
            address=DEAD_LETTER_TOPIC,
            transport="kafka",
            messages=("DeadLetter",),
            description="every payload a stage refused, verbatim, with each error and its field path",
            producers=("zerocarbon worker (validation)",),
            consumers=("operators", "producers' support"),
            key="family",
            partitions=1,
            # A dead letter carries its payload whole (base64 grows it by a third): allow
            # records above the broker's 10 MiB default.
            config={"retention.ms": str(90 * DAY_MS), "max.message.bytes": str(DEAD_LETTER_MAX_BYTES)},
        )
    )
    return out
