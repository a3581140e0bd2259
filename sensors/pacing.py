"""Release timed items at a given pace: a rate cap, a simulated-clock speed, a deadline.

Shared by the simulator and the replay: items carry their own (simulated or original)
time; ``speed`` ties that time to the wall clock (1 = as it happened, 60 = a minute per
second, None = no tie), ``rate`` caps the items per wall second (None = no cap), and
``duration`` stops after that many wall seconds. Items come out in batches of those due
now, so a fast publisher sends them in one write.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

_MIN_SLEEP = 0.002  # closer than this, an item is sent at once rather than slept for


def paced(
    items: Iterable[T],
    time_of: Callable[[T], float],
    *,
    speed: float | None = None,
    rate: float | None = None,
    duration: float | None = None,
    batch_max: int = 1000,
    monotonic: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[list[T]]:
    """Batches of ``items`` in order, each released when its time (and the rate) allow."""
    if speed is not None and speed <= 0:
        raise ValueError("speed must be positive (or None for no tie to the wall clock)")
    if rate is not None and rate <= 0:
        raise ValueError("rate must be positive (or None for no cap)")
    wall0 = monotonic()
    deadline = None if duration is None else wall0 + duration
    first: float | None = None
    batch: list[T] = []
    for k, item in enumerate(items):
        due = wall0 if rate is None else wall0 + k / rate
        if speed is not None:
            t = time_of(item)
            if first is None:
                first = t
            due = max(due, wall0 + (t - first) / speed)
        now = monotonic()
        if deadline is not None and max(due, now) >= deadline:
            break
        if due - now > _MIN_SLEEP:
            if batch:
                yield batch
                batch = []
            wait = due - monotonic()
            if wait > 0:
                sleep(wait)
        batch.append(item)
        if len(batch) >= batch_max:
            yield batch
            batch = []
    if batch:
        yield batch
