"""The evidence on Kafka: each record on ``zc.causal-evidence``, keyed by hypothesis and
commune (compacted: the latest record of a key is the current evidence), as the analyst."""

from __future__ import annotations

from collections.abc import Iterable
from types import TracebackType

from aiokafka import AIOKafkaProducer

from config.kafka_access import KafkaAccess
from schemas.catalogue import CAUSAL_EVIDENCE_TOPIC
from schemas.causal_evidence import CausalEvidence
from streams.kafka_admin import require_topics


class EvidencePublisher:
    def __init__(self, kafka: KafkaAccess) -> None:
        self.kafka = kafka
        self._producer: AIOKafkaProducer | None = None

    async def __aenter__(self) -> EvidencePublisher:
        await require_topics(self.kafka, [CAUSAL_EVIDENCE_TOPIC])  # MissingTopics says what to run
        self._producer = AIOKafkaProducer(**self.kafka.client_options(), acks="all", enable_idempotence=True)
        await self._producer.start()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._producer is not None:
            await self._producer.stop()

    async def publish(self, records: Iterable[CausalEvidence]) -> int:
        """Every record delivered (acknowledged by every in-sync replica); how many."""
        assert self._producer is not None, "publish inside `async with`"
        sent = 0
        for record in records:
            await self._producer.send(
                CAUSAL_EVIDENCE_TOPIC, record.model_dump_json(by_alias=True).encode(), key=record.key()
            )
            sent += 1
        await self._producer.flush()
        return sent
