"""The validation stage's memory of recent event ids (streams/validation/deduplication.py):
an open-addressing table in arrays allocated once, against a plain model of what it must
answer (a dict in arrival order, expired by time, the oldest evicted beyond its size)."""

from __future__ import annotations

import tracemalloc
from collections import OrderedDict

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.validation.deduplication import RecentEventIds


class Model:
    def __init__(self, horizon: float, max_size: int) -> None:
        self.horizon, self.max_size = horizon, max_size
        self.seen: OrderedDict[tuple[str, str], float] = OrderedDict()

    def seen_before(self, producer: str, event: str, now: float) -> bool:
        for pair, at in list(self.seen.items()):
            if at >= now - self.horizon:
                break
            del self.seen[pair]
        if (producer, event) in self.seen:
            return True
        self.seen[(producer, event)] = now
        if len(self.seen) > self.max_size:
            self.seen.popitem(last=False)
        return False


@settings(max_examples=300, deadline=None)
@given(
    max_size=st.integers(1, 12),
    horizon=st.integers(1, 30),
    steps=st.lists(st.tuples(st.integers(0, 2), st.integers(0, 40), st.integers(0, 5)), max_size=400),
)
def test_it_answers_as_the_model_whatever_the_order_expiry_and_evictions(
    max_size: int, horizon: int, steps: list[tuple[int, int, int]]
) -> None:
    # A pool of 3 producers x 41 ids in a table of at most 32 slots: probes wrap around and
    # removals shift entries back, often.
    recent, model = RecentEventIds(horizon, max_size), Model(horizon, max_size)
    now = 0
    for producer, event, elapsed in steps:
        now += elapsed
        pair = (f"producer-{producer}", f"e{event}")
        assert recent.seen_before(*pair, now) == model.seen_before(*pair, now), (pair, now)
        assert len(recent) == len(model.seen)


def test_its_memory_is_allocated_once() -> None:
    """Before, a set and two deques grew with the pairs: a soak's worker grew until a million
    pairs were held, 8 minutes at 2 000 readings/s, past the 5 minutes a soak allows."""
    tracemalloc.start()
    try:
        recent = RecentEventIds(horizon=3600, max_size=100_000)
        allocated, _ = tracemalloc.get_traced_memory()
        for k in range(300_000):
            recent.seen_before("producer", f"{k:08d}", now=k / 1000)
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(recent) == 100_000
    assert allocated >= 32 * 100_000  # the arrays, at once
    assert after - allocated < 100_000  # nothing per pair since
