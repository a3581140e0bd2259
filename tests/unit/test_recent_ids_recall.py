"""Validation's memory recalled from typed records (streams/validation/recent_ids_recall.py):
each pair remembered at the time it was accepted, so it is a duplicate for what remains of
its horizon and no longer."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from streams.validation.deduplication import RecentEventIds
from streams.validation.recent_ids_recall import Recall, parse_wall_time, recall_start, remember_record

NOW = datetime(2026, 12, 7, 11, 0, tzinfo=UTC)
MONO = 50_000.0  # the memory's clock when the recall runs


def typed_record(*events: tuple[str, str, datetime]) -> bytes:
    return json.dumps(
        [
            {
                "producer_id": producer,
                "event_id": event_id,
                "ingestion_time": at.isoformat(),
                "commune": "17300",
            }
            for producer, event_id, at in events
        ]
    ).encode()


def recalled(value: bytes, horizon: float = 3600) -> tuple[RecentEventIds, Recall]:
    recent, recall = RecentEventIds(horizon=horizon, max_size=100), Recall()
    remember_record(recent, value, NOW.timestamp(), MONO, recall)
    return recent, recall


def test_a_pair_accepted_within_the_horizon_is_a_duplicate_for_what_remains_of_it() -> None:
    recent, recall = recalled(typed_record(("enedis", "e1", NOW - timedelta(seconds=3500))))
    assert (recall.records, recall.remembered, recall.unreadable) == (1, 1, 0)
    assert recent.seen_before("enedis", "e1", MONO + 99)
    # Accepted 3 500 s before the recall: 100 s later its hour is over, as it would have been live.
    assert not recent.seen_before("enedis", "e1", MONO + 101)


def test_a_pair_older_than_the_horizon_is_not_remembered() -> None:
    recent, recall = recalled(typed_record(("enedis", "old", NOW - timedelta(seconds=3601))))
    assert recall.remembered == 0 and len(recent) == 0
    assert not recent.seen_before("enedis", "old", MONO)


def test_every_event_of_a_record_is_remembered_and_producers_keep_their_own_ids() -> None:
    at = NOW - timedelta(minutes=5)
    recent, recall = recalled(typed_record(("enedis", "e1", at), ("grdf", "e1", at), ("enedis", "e2", at)))
    assert recall.remembered == 3
    assert recent.seen_before("grdf", "e1", MONO) and recent.seen_before("enedis", "e2", MONO)
    assert not recent.seen_before("grdf", "e2", MONO)


def test_what_is_not_a_typed_record_is_counted_unreadable_and_skipped() -> None:
    for value in (b"{not json", b'{"event_id": "e1"}', b"[" * 100_000):
        recent, recall = recalled(value)
        assert (recall.records, recall.remembered, recall.unreadable) == (1, 0, 1), value[:20]
        assert len(recent) == 0


def test_events_without_a_producer_an_id_or_an_aware_ingestion_time_are_left_out() -> None:
    at = (NOW - timedelta(minutes=1)).isoformat()
    value = json.dumps(
        [
            {"producer_id": "p", "event_id": "no-time"},
            {"producer_id": "p", "event_id": "naive", "ingestion_time": "2026-12-07T10:59:00"},
            {"event_id": "no-producer", "ingestion_time": at},
            {"producer_id": "p", "event_id": 7, "ingestion_time": at},
            "not an event",
            {"producer_id": "p", "event_id": "kept", "ingestion_time": at},
        ]
    ).encode()
    recent, recall = recalled(value)
    assert recall.remembered == 1 and recent.seen_before("p", "kept", MONO)


def test_ingestion_times_are_read_with_their_offset() -> None:
    assert parse_wall_time("2026-12-07T11:00:00Z") == NOW.timestamp()
    assert parse_wall_time("2026-12-07T12:00:00+01:00") == NOW.timestamp()
    assert parse_wall_time("2026-12-07T11:00:00") is None
    assert parse_wall_time("yesterday") is None


def test_a_partition_is_read_back_from_its_horizon_but_no_more_than_its_share() -> None:
    assert recall_start(in_horizon=900, first=0, end=1000, share=500) == 900  # the horizon is nearer
    assert recall_start(in_horizon=10, first=0, end=1000, share=500) == 500  # its share is
    assert recall_start(in_horizon=10, first=700, end=1000, share=500) == 700  # older ones deleted
    assert recall_start(in_horizon=None, first=0, end=1000, share=500) == 1000  # nothing in the horizon
