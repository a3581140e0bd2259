"""Validation's memory of recent event ids, recalled from the typed topics when a worker starts.

The memory (deduplication.py) lives in the process. A worker that restarted had forgotten every
id it accepted, so whatever was sent again just after the restart was accepted again and
counted twice downstream: a bridge that lost the MQTT broker resends its whole in-flight
window (20 000 readings in issue 19's outage), a partner retries a batch, a collector whose
cursor was older resends a page. The indicator stage remembers only the last 20 000 ids of a
partition.

Nothing new has to be kept for it: every accepted event is on ``zc.valid.<family>`` with its
producer, its id and its ingestion time, and only accepted events are remembered (a resent
dead letter is dead-lettered again). So at start-up the worker reads back the horizon's
records of every typed partition, the latest ``RECALL_MAX_RECORDS`` records at most, and
remembers each pair as if it had just accepted it, at the time it did. What was accepted then
is a duplicate again, as it was before the restart.

Bounded because it delays validation at every start: read whole, a CI run's last hour was
127 000 records of 1.8 million events, 22 s per worker start (and more pairs than the memory
holds). 20 000 records are at least 20 000 readings, the bridge's whole in-flight window; in
such a run they would take 2 to 4 s.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition

from config.kafka_access import KafkaAccess
from streams.kafka_admin import topic_ends
from streams.validation.deduplication import RecentEventIds

log = logging.getLogger(__name__)

RECALL_MAX_RECORDS = 20_000
"""At most so many typed records are read back, shared evenly by the partitions."""


@dataclass
class Recall:
    """What a recall read and remembered; ``unreadable`` records are skipped (never ours)."""

    records: int = 0
    remembered: int = 0
    unreadable: int = 0
    seconds: float = 0.0


def parse_wall_time(stamp: str) -> float | None:
    """Epoch seconds of an ISO 8601 time with its offset (``Z`` or ``+00:00``); None if not one."""
    try:
        parsed = datetime.fromisoformat(stamp)
    except (TypeError, ValueError):
        return None
    return parsed.timestamp() if parsed.tzinfo is not None else None


def remember_record(
    recent: RecentEventIds, value: bytes, wall_now: float, monotonic_now: float, recall: Recall
) -> None:
    """Remember each event of one typed record (a JSON array of accepted events) at the moment
    validation accepted it, on the memory's monotonic clock; events older than the horizon
    are not remembered (the live memory would have let them go)."""
    recall.records += 1
    try:
        events = json.loads(value)
    except (ValueError, RecursionError):
        recall.unreadable += 1
        return
    if not isinstance(events, list):
        recall.unreadable += 1
        return
    for event in events:
        if not isinstance(event, dict):
            continue
        producer, event_id = event.get("producer_id"), event.get("event_id")
        accepted = parse_wall_time(event.get("ingestion_time"))  # type: ignore[arg-type]
        if not isinstance(producer, str) or not isinstance(event_id, str) or accepted is None:
            continue
        age = max(0.0, wall_now - accepted)
        if age > recent.horizon:
            continue
        recent.seen_before(producer, event_id, monotonic_now - age)
        recall.remembered += 1


def recall_start(in_horizon: int | None, first: int, end: int, share: int) -> int:
    """Where a partition is read back from: its first record within the horizon
    (``in_horizon``; None: none is), but no more than its ``share`` of the last records, nor
    before its first kept one. ``end`` when there is nothing to read."""
    if in_horizon is None:
        return end
    return min(end, max(in_horizon, end - share, first))


async def recall_recent_ids(
    kafka: KafkaAccess,
    recent: RecentEventIds,
    topics: Sequence[str],
    timeout: float = 120.0,
    max_records: int = RECALL_MAX_RECORDS,
) -> Recall:
    """Read back the horizon's records of every partition of ``topics`` into ``recent``: per
    partition, from the first record appended within the horizon, or from the last
    ``max_records // partitions`` records if that is later, to the end the partition had when the
    recall began. Raises what the consumer raises; TimeoutError after ``timeout`` seconds."""
    started, recall = time.monotonic(), Recall()
    # Every partition, by the topics' metadata: a consumer's own metadata named none of them
    # before it was assigned, and a first version read nothing.
    ends = await topic_ends(kafka, topics)
    partitions = sorted(ends)
    if not partitions:
        return recall
    consumer = AIOKafkaConsumer(
        **kafka.client_options(), enable_auto_commit=False, max_partition_fetch_bytes=8 << 20
    )
    await consumer.start()
    try:
        consumer.assign(partitions)
        firsts = await consumer.beginning_offsets(partitions)
        since_ms = int((time.time() - recent.horizon) * 1000)
        found = await consumer.offsets_for_times(dict.fromkeys(partitions, since_ms))
        share = max(1, max_records // len(partitions))
        remaining: dict[TopicPartition, int] = {}
        for tp in partitions:
            at = found.get(tp)
            start = recall_start(None if at is None else at.offset, firsts[tp], ends[tp], share)
            if start < ends[tp]:
                consumer.seek(tp, start)
                remaining[tp] = ends[tp]
        deadline = started + timeout
        while remaining:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(remaining)} partitions not read back in {timeout:g} s")
            batches = await consumer.getmany(*remaining, timeout_ms=1000, max_records=5000)
            wall_now, monotonic_now = time.time(), time.monotonic()
            for tp, records in batches.items():
                for record in records:
                    if record.offset < remaining[tp]:
                        remember_record(recent, record.value or b"", wall_now, monotonic_now, recall)
                if await consumer.position(tp) >= remaining[tp]:
                    del remaining[tp]
    finally:
        await consumer.stop()
    recall.seconds = time.monotonic() - started
    return recall
