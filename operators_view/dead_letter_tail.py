"""The latest dead letters, read from the end of zc.deadletter for the page.

A consumer without a group (nothing committed, nobody else's position moved) starts a few
records before the end of each partition, so the page opens with the latest reasons, then
follows the topic. Only the reason and where it failed are kept, never the payload: the
page shows why events are refused, not what they contained.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError
from pydantic import ValidationError

from config.kafka_access import KafkaAccess
from schemas.catalogue import DEAD_LETTER_TOPIC
from schemas.dead_letter import DeadLetter

log = logging.getLogger("zerocarbon.view")


@dataclass(frozen=True)
class DeadLetterLine:
    """One dead letter as the page shows it."""

    failed_at: str
    family: str
    stage: str
    reason: str
    error_type: str
    producer: str | None
    errors: int
    offset: int


def dead_letter_line(value: bytes, offset: int) -> DeadLetterLine:
    """What the page shows of one zc.deadletter record (an unreadable record says so)."""
    try:
        letter = DeadLetter.model_validate_json(value)
    except ValidationError as exc:
        return DeadLetterLine(
            failed_at="", family="?", stage="?", reason=f"unreadable dead-letter record: {exc.error_count()} "
            "errors", error_type="unreadable", producer=None, errors=0, offset=offset,
        )  # fmt: skip
    return DeadLetterLine(
        failed_at=letter.failed_at.isoformat(),
        family=letter.family,
        stage=letter.stage,
        reason=letter.reason[:300],
        error_type=letter.errors[0].type if letter.errors else "",
        producer=letter.producer_id,
        errors=len(letter.errors),
        offset=offset,
    )


class DeadLetterTail:
    """Follows zc.deadletter from ``kept`` records before its end; ``latest()`` newest first."""

    def __init__(self, kafka: KafkaAccess, kept: int, topic: str = DEAD_LETTER_TOPIC) -> None:
        self.topic = topic
        self._kafka = kafka
        self._lines: deque[DeadLetterLine] = deque(maxlen=kept)
        self._task: asyncio.Task[None] | None = None
        self.seen = 0  # records read since start
        self.error: str | None = None

    def latest(self) -> list[DeadLetterLine]:
        return list(reversed(self._lines))

    def start(self) -> None:
        self._task = asyncio.create_task(self._follow(), name="dead-letter-tail")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _follow(self) -> None:
        while True:
            consumer = AIOKafkaConsumer(
                **self._kafka.client_options(),
                enable_auto_commit=False,
                auto_offset_reset="latest",
                fetch_max_wait_ms=500,
            )
            try:
                await consumer.start()
                await self._seek_near_end(consumer)
                self.error = None
                while True:
                    batches = await consumer.getmany(timeout_ms=1000, max_records=500)
                    for records in batches.values():
                        for record in records:
                            self._lines.append(dead_letter_line(record.value or b"", record.offset))
                            self.seen += 1
            except KafkaError as exc:
                self.error = f"zc.deadletter: {exc!r}"
                log.warning("dead-letter tail: %r, retrying in 5 s", exc)
            finally:
                await consumer.stop()
            await asyncio.sleep(5)

    async def _seek_near_end(self, consumer: AIOKafkaConsumer) -> None:
        # Without a group, a subscription is assigned every partition of the topic as soon as
        # the client knows them: the way to learn them through the consumer's public API.
        consumer.subscribe([self.topic])
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while not consumer.assignment():
            if loop.time() > deadline:
                raise KafkaError(f"no partition of {self.topic} assigned within 10 s")
            await asyncio.sleep(0.1)
        tps = sorted(consumer.assignment())
        ends = await consumer.end_offsets(tps)
        starts = await consumer.beginning_offsets(tps)
        kept = self._lines.maxlen or 0
        for tp in tps:
            consumer.seek(tp, max(ends[tp] - kept, starts[tp]))
