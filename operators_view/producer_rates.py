"""Readings per second per producer and the dead-letter rate, from two samples of the worker's
cumulative validation counters (`/counters`, streams/worker_web.py).

The worker only counts; rates are differences over the time between two polls, so they cost
nothing while nobody watches.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

OUTCOMES = ("accepted", "duplicates", "dead_lettered")


@dataclass(frozen=True)
class CounterSample:
    """The worker's counters as `/counters` returned them, and when (monotonic seconds)."""

    at: float
    counters: dict[str, Any]


@dataclass(frozen=True)
class ProducerRate:
    producer: str
    readings_per_second: float
    dead_letters_per_second: float
    accepted: int
    duplicates: int
    dead_lettered: int


@dataclass(frozen=True)
class ValidationRates:
    """Rates between two samples; ``None`` rates when there is no earlier sample or the
    worker restarted in between (its counters started again from zero)."""

    interval_seconds: float | None
    received_per_second: float | None
    dead_letters_per_second: float | None
    dead_letter_share: float | None  # dead-lettered / received over the interval
    dead_letter_share_since_start: float | None
    producers: list[ProducerRate]
    reasons: dict[str, int]  # error type -> dead letters since the worker started
    balanced: bool | None


def _per_producer(counters: dict[str, Any], outcome: str) -> dict[str, int]:
    return {str(k): int(v) for k, v in (counters.get(outcome) or {}).items()}


def _total(counters: dict[str, Any], outcome: str) -> int:
    return sum(_per_producer(counters, outcome).values())


def restarted(previous: CounterSample, current: CounterSample) -> bool:
    """A counter that went down means a new worker process counting from zero."""
    if int(current.counters.get("received", 0)) < int(previous.counters.get("received", 0)):
        return True
    return any(
        count < _per_producer(previous.counters, outcome).get(producer, 0)
        for outcome in OUTCOMES
        for producer, count in _per_producer(current.counters, outcome).items()
    )


def validation_rates(previous: CounterSample | None, current: CounterSample) -> ValidationRates:
    """Rates per producer and for the whole stage between ``previous`` and ``current``."""
    now = current.counters
    received = int(now.get("received", 0))
    dead_total = _total(now, "dead_lettered")
    usable = previous is not None and current.at > previous.at and not restarted(previous, current)
    interval = current.at - previous.at if usable and previous is not None else None
    before = previous.counters if usable and previous is not None else None

    producers = sorted(
        {producer for outcome in OUTCOMES for producer in _per_producer(now, outcome)},
    )
    rows = []
    for producer in producers:
        counts = {outcome: _per_producer(now, outcome).get(producer, 0) for outcome in OUTCOMES}
        if before is not None and interval:
            delta = {o: counts[o] - _per_producer(before, o).get(producer, 0) for o in OUTCOMES}
            per_second = sum(delta.values()) / interval
            dead_per_second = delta["dead_lettered"] / interval
        else:
            per_second = dead_per_second = 0.0
        rows.append(
            ProducerRate(
                producer=producer,
                readings_per_second=per_second,
                dead_letters_per_second=dead_per_second,
                accepted=counts["accepted"],
                duplicates=counts["duplicates"],
                dead_lettered=counts["dead_lettered"],
            )
        )
    rows.sort(key=lambda row: (-row.readings_per_second, -(row.accepted + row.dead_lettered), row.producer))

    received_rate = dead_rate = share = None
    if before is not None and interval:
        received_delta = received - int(before.get("received", 0))
        dead_delta = dead_total - _total(before, "dead_lettered")
        received_rate, dead_rate = received_delta / interval, dead_delta / interval
        share = dead_delta / received_delta if received_delta else None
    balanced = now.get("balanced")
    return ValidationRates(
        interval_seconds=interval,
        received_per_second=received_rate,
        dead_letters_per_second=dead_rate,
        dead_letter_share=share,
        dead_letter_share_since_start=dead_total / received if received else None,
        producers=rows,
        reasons={str(k): int(v) for k, v in (now.get("reasons") or {}).items()},
        balanced=bool(balanced) if balanced is not None else None,
    )
