"""Freshness and completeness per producer and commune, from one partition's events."""

from __future__ import annotations

from datetime import UTC, datetime

from streams.indicators.producer_activity import COMPLETENESS, LAST_EVENT, ProducerActivity

H = int(datetime(2026, 3, 2, 10, tzinfo=UTC).timestamp())
DIMS = (("commune", "17300"), ("producer", "enedis"))


def by_name(updates: list, name: str) -> list:  # type: ignore[type-arg]
    return [u for u in updates if u.indicator == name]


def test_completeness_counts_each_reporting_device_once_per_hour() -> None:
    activity = ProducerActivity(grace_seconds=300)
    for minute, device in [(1, "m1"), (2, "m2"), (30, "m1"), (40, "m3")]:
        activity.add("enedis", "17300", device, H + 60 * minute)
    updates = activity.flush({("enedis", "17300"): 4})
    [hour] = by_name(updates, COMPLETENESS)
    assert (hour.dimensions, hour.start, hour.total, hour.final) == (DIMS, H, 3 / 4, False)
    [last] = by_name(updates, LAST_EVENT)
    assert last.total == H + 40 * 60 and last.size == 0


def test_the_hour_is_final_once_the_watermark_passes_its_end_and_grace() -> None:
    activity = ProducerActivity(grace_seconds=300)
    activity.add("enedis", "17300", "m1", H + 60)
    activity.flush({("enedis", "17300"): 2})
    activity.add("enedis", "17300", "m2", H + 3600 + 301)  # next hour, past the grace
    updates = by_name(activity.flush({("enedis", "17300"): 2}), COMPLETENESS)
    closed = [u for u in updates if u.start == H]
    assert [(u.total, u.final) for u in closed] == [(0.5, True)]
    # A straggler for the closed hour moves freshness only, never the final figure.
    activity.add("enedis", "17300", "m2", H + 120)
    assert by_name(activity.flush({("enedis", "17300"): 2}), COMPLETENESS) == []


def test_freshness_keeps_the_latest_event_time() -> None:
    activity = ProducerActivity(grace_seconds=300)
    activity.add("enedis", "17300", "m1", H + 600)
    activity.add("enedis", "17300", "m1", H + 60)  # older, arrives later
    [last] = by_name(activity.flush({}), LAST_EVENT)
    assert last.total == H + 600


def test_checkpoint_round_trip_neither_forgets_nor_double_counts() -> None:
    activity = ProducerActivity(grace_seconds=300)
    activity.add("enedis", "17300", "m1", H + 60)
    activity.flush({("enedis", "17300"): 2})
    restored = ProducerActivity.from_doc(activity.to_doc(), 300)
    restored.add("enedis", "17300", "m1", H + 120)  # the same device again: no new count
    restored.add("enedis", "17300", "m2", H + 180)
    [hour] = by_name(restored.flush({("enedis", "17300"): 2}), COMPLETENESS)
    assert hour.total == 1.0


def test_the_checkpoint_carries_the_activity() -> None:
    from streams.indicators.window_state import WindowState
    from streams.indicators.window_state_codec import PartitionState, decode, encode

    activity = ProducerActivity(grace_seconds=300)
    activity.add("enedis", "17300", "m1", H + 60)
    activity.flush({})
    state = PartitionState(WindowState((60, 86_400), 300), offset=5, activity=activity)
    restored = decode(encode(state), 0).activity
    assert restored is not None
    assert (restored.last_event, restored.hours) == (activity.last_event, activity.hours)
