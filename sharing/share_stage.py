"""`zerocarbon share`: the sharing stage, between the platform's topics and each party's own.

It moves records between Kafka and the pure ``SharingEngine``: the agreements in force are
read whole from ``zc.agreements`` at start and followed while it runs (a revocation applies
to the next record read); each record of ``zc.valid.*`` and ``zc.indicators`` becomes what
each agreement allows, on ``zc.share.<party>``, with the agreement and its version in
headers; after every batch the audit gets what each agreement released, and only once Kafka
has acknowledged the releases and their audit are the inputs' offsets committed (a crash
sends a batch again, never loses one). A new consumer group starts at the topics' ends: an
agreement shares what arrives once it is in force, not the history.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from pydantic_core import from_json

from config.kafka_access import KafkaAccess
from config.prometheus_metrics import MetricsEndpoint, metrics_registry, metrics_server
from schemas.catalogue import (
    AGREEMENT_TOPIC,
    DEAD_LETTER_TOPIC,
    INDICATOR_TOPIC,
    SHARING_AUDIT_TOPIC,
    valid_topic,
)
from schemas.dead_letter import FieldProblem, Origin
from schemas.dead_letters import dead_letter
from sharing.agreement_records import AgreementState, audit_change, audit_release, read_agreement_record
from sharing.event_kinds import EVENT_FAMILIES
from sharing.pseudonyms import Pseudonymiser, keys_at
from sharing.sharing_engine import Release, SharingEngine
from sharing.sharing_metrics import SHARING_METRICS, sharing_snapshot
from streams.kafka_admin import require_topics

log = logging.getLogger(__name__)
STAGE = "sharing"
VALID_TOPICS = {valid_topic(family): family for family in EVENT_FAMILIES}


@dataclass(frozen=True)
class ShareConfig:
    """What the sharing stage needs: its principal, its group, the key file, the indicator names."""

    kafka: KafkaAccess
    group: str
    key_file: Path
    indicators: frozenset[str]
    metrics: MetricsEndpoint = field(default_factory=MetricsEndpoint)  # sharing/sharing_metrics.py
    poll_seconds: float = 0.25


@dataclass
class ShareCounters:
    """Every input record is offered to the agreements, wanted by none, a tombstone, or
    dead-lettered: records = offered + shared_with_nobody + tombstones + dead_lettered."""

    records: int = 0
    offered: int = 0  # read and given to the engine (which may share it with nobody)
    shared_with_nobody: int = 0  # no agreement in force wanted it: not even parsed
    tombstones: int = 0
    dead_lettered: int = 0
    releases_by_party: Counter[str] = field(default_factory=Counter)


class _Assigned(ConsumerRebalanceListener):
    def __init__(self, assigned: asyncio.Event) -> None:
        self.assigned = assigned

    async def on_partitions_revoked(self, revoked: Any) -> None:
        return None

    async def on_partitions_assigned(self, assigned: Any) -> None:
        topics = sorted({tp.topic for tp in assigned})
        log.info("sharing ready: reading %d partitions of %s", len(assigned), topics)
        self.assigned.set()


class SharingStage:
    """One run of the stage; ``run`` returns its counters once ``stop`` is set."""

    def __init__(self, config: ShareConfig) -> None:
        self.config = config
        self.counters = ShareCounters()
        self.states: dict[str, AgreementState] = {}
        self.assigned = asyncio.Event()
        self._key_mtime = 0.0
        self._key_version = 0
        self.engine = SharingEngine(self._pseudonymiser())
        self._in_force: set[str] = set()

    def _pseudonymiser(self) -> Pseudonymiser:
        keys = keys_at(self.config.key_file)
        self._key_mtime = self.config.key_file.stat().st_mtime
        self._key_version = keys.current
        log.info("sharing: household pseudonyms under key version %d", keys.current)
        return Pseudonymiser(keys)

    async def run(self, stop: asyncio.Event) -> ShareCounters:
        """Share until ``stop``, serving /metrics, /health and /ready (its partitions assigned)."""
        registry = metrics_registry(
            SHARING_METRICS, lambda: sharing_snapshot(self.counters, len(self._in_force))
        )

        def ready() -> dict[str, bool]:
            return {"kafka_assigned": self.assigned.is_set()}

        async with metrics_server(registry, self.config.metrics, ready) as port:
            log.info("sharing: /metrics, /health and /ready on port %d", port)
            return await self._share(stop)

    async def _share(self, stop: asyncio.Event) -> ShareCounters:
        kafka = self.config.kafka
        await require_topics(kafka, [*VALID_TOPICS, INDICATOR_TOPIC, AGREEMENT_TOPIC, SHARING_AUDIT_TOPIC])
        agreements = AIOKafkaConsumer(**kafka.client_options(), enable_auto_commit=False)
        consumer = AIOKafkaConsumer(
            **kafka.client_options(),
            group_id=self.config.group,
            enable_auto_commit=False,
            auto_offset_reset="latest",
            max_partition_fetch_bytes=16 << 20,
        )
        producer = AIOKafkaProducer(
            **kafka.client_options(), acks="all", linger_ms=5, max_request_size=10 << 20
        )
        await agreements.start()
        await producer.start()
        try:
            await self._read_agreements_to_end(agreements, producer)
            consumer.subscribe([*VALID_TOPICS, INDICATOR_TOPIC], listener=_Assigned(self.assigned))
            await consumer.start()
            try:
                while not stop.is_set():
                    await self._one_batch(consumer, agreements, producer)
            finally:
                await consumer.stop()
        finally:
            await agreements.stop()
            await producer.stop()
        log.info("sharing stopped: %s", self.counters)
        return self.counters

    async def _read_agreements_to_end(self, agreements: AIOKafkaConsumer, producer: AIOKafkaProducer) -> None:
        partition = TopicPartition(AGREEMENT_TOPIC, 0)
        agreements.assign([partition])
        await agreements.seek_to_beginning(partition)
        end = (await agreements.end_offsets([partition]))[partition]
        while await agreements.position(partition) < end:
            await self._follow_agreements(agreements, producer, timeout_ms=1000)
        log.info("sharing: %d agreement(s) in force at start", len(self.engine.agreements))

    async def _follow_agreements(
        self, agreements: AIOKafkaConsumer, producer: AIOKafkaProducer, timeout_ms: int
    ) -> None:
        batch = await agreements.getmany(timeout_ms=timeout_ms)
        for records in batch.values():
            for record in records:
                state = read_agreement_record(record.key, record.value, self.config.indicators)
                self.states[state.uid] = state
                if state.agreement is not None:
                    self.engine.grant(state.agreement)
                    log.info(
                        "sharing: agreement %s version %s for %s",
                        state.uid,
                        state.agreement.short_version,
                        state.agreement.party,
                    )
                else:
                    self.engine.revoke(state.uid)
                    log.warning(
                        "sharing: agreement %s not in force: %s",
                        state.uid,
                        state.refused or f"revoked ({state.revoked_reason})",
                    )
        now = datetime.now(UTC)
        in_force = {uid for uid, a in self.engine.agreements.items() if a.active(now)}
        for uid in sorted(self._in_force - in_force):
            agreement = self.engine.agreements.get(uid)
            if agreement is not None:  # still granted: it expired
                log.info("sharing: agreement %s expired at %s", uid, agreement.valid_until)
                await producer.send_and_wait(
                    SHARING_AUDIT_TOPIC,
                    audit_change("expire", agreement.party, uid, agreement.version, now),
                    key=agreement.party.encode(),
                )
        self._in_force = in_force

    async def _one_batch(
        self, consumer: AIOKafkaConsumer, agreements: AIOKafkaConsumer, producer: AIOKafkaProducer
    ) -> None:
        await self._follow_agreements(agreements, producer, timeout_ms=0)
        self._reload_keys_if_rotated()
        batch = await consumer.getmany(timeout_ms=int(self.config.poll_seconds * 1000), max_records=5000)
        if not batch:
            return
        now = datetime.now(UTC)
        sends: list[Awaitable[Any]] = []
        for tp, records in batch.items():
            for release in await self._releases(tp, records, producer, now):
                sends.append(await producer.send(release.topic, release.value, headers=release.headers))
                self.counters.releases_by_party[release.agreement.party] += 1
        for agreement, tally in self.engine.take_tallies().values():
            audit = audit_release(agreement, tally, now, self._key_version)
            sends.append(await producer.send(SHARING_AUDIT_TOPIC, audit, key=agreement.party.encode()))
        await asyncio.gather(*sends)
        await consumer.commit()

    async def _releases(
        self, tp: TopicPartition, records: list[Any], producer: AIOKafkaProducer, now: datetime
    ) -> list[Release]:
        """What a partition's records give each party: one release per agreement and record of
        events, one per agreement for the batch's indicator updates. A record no agreement in
        force may want is not parsed; one that cannot be read is dead-lettered."""
        c = self.counters
        c.records += len(records)
        family = VALID_TOPICS.get(tp.topic)
        releases: list[Release] = []
        updates: list[tuple[Any, dict[str, Any]]] = []
        for record in records:
            if record.value is None:
                c.tombstones += 1
            elif not self._wanted(family, record.value):
                c.shared_with_nobody += 1
            else:
                try:
                    if family is None:
                        updates.append((record, _update(record.value)))
                    else:
                        releases += self.engine.events(family, _events(record.value), now)
                        c.offered += 1
                except (ValueError, KeyError, TypeError) as exc:
                    await self._dead_letter(tp, record, f"{type(exc).__name__}: {exc}", producer, now)
        if updates:
            try:
                releases += self.engine.indicators([update for _, update in updates], now)
                c.offered += len(updates)
            except (ValueError, KeyError, TypeError) as exc:
                log.warning("sharing: an indicator update of %s failed (%r): taking them one by one", tp, exc)
                for record, update in updates:
                    try:
                        releases += self.engine.indicators([update], now)
                        c.offered += 1
                    except (ValueError, KeyError, TypeError) as one:
                        await self._dead_letter(tp, record, f"{type(one).__name__}: {one}", producer, now)
        return releases

    def _wanted(self, family: str | None, value: bytes) -> bool:
        if family is None:
            name = indicator_name(value)
            return name is None or self.engine.wants_indicator(name)
        return self.engine.wants_family(family)

    async def _dead_letter(
        self, tp: TopicPartition, record: Any, problem: str, producer: AIOKafkaProducer, now: datetime
    ) -> None:
        self.counters.dead_lettered += 1
        family = VALID_TOPICS.get(tp.topic, "indicators")
        origin = Origin(transport="kafka", topic=tp.topic, partition=tp.partition, offset=record.offset)
        letter = dead_letter(
            family=family,
            stage=STAGE,
            raw=record.value,
            problems=[FieldProblem(path="", type="unreadable", message=problem)],
            origin=origin,
            now=now,
        )
        await producer.send_and_wait(
            DEAD_LETTER_TOPIC, letter.model_dump_json(by_alias=True).encode(), key=family.encode()
        )

    def _reload_keys_if_rotated(self) -> None:
        try:
            mtime = self.config.key_file.stat().st_mtime
        except OSError:
            return
        if mtime != self._key_mtime:
            self.engine.pseudonymise = self._pseudonymiser()


def indicator_name(value: bytes) -> str | None:
    """The indicator of an update's JSON, found without parsing it; None when not found
    plainly (then the update is parsed to know): the stage parses only the updates an
    agreement targets."""
    at = value.find(b'"indicator"')
    if at < 0:
        return None
    rest = value[at + len(b'"indicator"') : at + 200].lstrip()
    if not rest.startswith(b":"):
        return None
    rest = rest[1:].lstrip()
    end = rest.find(b'"', 1)
    if not rest.startswith(b'"') or end < 0 or b"\\" in rest[:end]:
        return None
    return rest[1:end].decode("utf-8", errors="replace")


def _update(value: bytes) -> dict[str, Any]:
    update = from_json(value)
    if not isinstance(update, dict):
        raise ValueError("an indicator record is a JSON object")
    return update


def _events(value: bytes) -> list[dict[str, Any]]:
    events = from_json(value)
    if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
        raise ValueError("a valid record is a JSON array of events")
    return events
