"""A reading sent again after the worker restarted is a duplicate, as it was before (issue 19).

Validation's memory of event ids lived in the process: a restarted worker accepted again what
a bridge or a partner resent, and the typed topics carried it twice. It is now recalled from
the typed topics at start-up (streams/validation/recent_ids_recall.py).
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer

from config.kafka_access import KafkaAccess
from config.settings import Settings
from schemas.catalogue import raw_topic, valid_topic
from streams.kafka_admin import records_after, topic_ends
from tests.energy_readings import energy_reading
from tests.integration.worker_runs import start_worker
from tests.waiting import until
from zerocarbon.demo import validation_totals, worker_counters
from zerocarbon.processes import stop_child

FIRST, NEW = 30, 5


async def _produce(kafka: KafkaAccess, events: list[dict[str, Any]]) -> None:
    producer = AIOKafkaProducer(**kafka.client_options(), acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for event in events:
            await producer.send(raw_topic("energy"), json.dumps(event).encode(), key=b"17300")
        await producer.flush()
    finally:
        await producer.stop()


def _counted(settings: Settings, accepted: int, duplicates: int = 0) -> bool:
    """Whether the running worker has counted at least so many of each outcome."""
    totals = validation_totals(worker_counters(settings))
    return totals["accepted"] >= accepted and totals["duplicates"] >= duplicates


async def test_what_a_worker_accepted_is_a_duplicate_for_the_next_one(
    settings: Settings, kafka_admin: KafkaAccess, tmp_path: Path
) -> None:
    run, now = uuid.uuid4().hex[:8], datetime.now(UTC)
    marker = f"restart-{run}"
    first = [energy_reading(marker, f"{run}-{k}", now) for k in range(FIRST)]
    new = [energy_reading(marker, f"{run}-new-{k}", now) for k in range(NEW)]
    starts = await topic_ends(kafka_admin, [valid_topic("energy")])

    worker = start_worker(tmp_path / "first.log")
    try:
        await _produce(kafka_admin, first)
        await until("the first worker accepting its readings", lambda: _counted(settings, FIRST))
    finally:
        stop_child(worker)  # SIGTERM: it commits where it read

    worker = start_worker(tmp_path / "second.log")
    try:
        await _produce(kafka_admin, first + new)  # all sent again (a bridge after an outage), and new ones
        # Before the recall, the second worker accepted all 35: it never counted 30 duplicates.
        await until(
            "the second worker counting the resent as duplicates", lambda: _counted(settings, NEW, FIRST)
        )
    finally:
        stop_child(worker)

    typed = [
        event
        for _topic, value in await records_after(kafka_admin, starts)
        for event in json.loads(value)
        if event["producer_id"] == marker
    ]
    ids = [event["event_id"] for event in typed]
    assert sorted(ids) == sorted(e["event_id"] for e in first + new), "each reading on the typed topic once"
    log = (tmp_path / "second.log").read_text()
    assert "validation remembers" in log, log[-2000:]
