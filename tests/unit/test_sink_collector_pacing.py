"""The sink paces the collector only while it runs, and leaves it as it found it."""

from __future__ import annotations

import gc

from sinks.collector_pacing import YOUNG_THRESHOLD, paced_collector


def test_the_collector_is_paced_within_and_restored_after() -> None:
    before = gc.get_threshold()
    with paced_collector():
        assert gc.get_threshold() == (YOUNG_THRESHOLD, *before[1:])
        assert gc.get_freeze_count() > 0  # what existed before the loop is left alone
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
