"""What the indicator flushes do, for Prometheus (docs/metrics.md): how long they take, by
phase, and the windows they leave open and close.

A flush (once a second) computes every partition's updates, waits until Kafka has them, then
writes the checkpoints that are due: each phase's duration is one observation, so a
scrape shows where a slow flush spends its time without reading the worker's log. The windows
open after it (in memory, across the worker's partitions) and those it closed (published
final) say how much state the worker holds and how fast event time moves through it.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.registry import Collector

PHASES = ("compute", "deliver", "checkpoint")
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class FlushTimings:
    """The histogram the flush observes and the worker's /metrics serves."""

    def __init__(self) -> None:
        self.seconds = Histogram(
            "zc_indicator_flush_seconds",
            "duration of each phase of the indicator flush: compute (windows, updates, checkpoints "
            "encoded), deliver (until Kafka has the updates and dead letters), checkpoint (written)",
            ["phase"],
            buckets=BUCKETS,
            registry=None,
        )
        self._phases = {phase: self.seconds.labels(phase=phase) for phase in PHASES}
        self.windows_open = Gauge(
            "zc_indicator_windows_open",
            "windows open after the last flush, across this worker's partitions",
            registry=None,
        )
        self.windows_closed = Counter(
            "zc_indicator_windows_closed",
            "windows the flushes closed on event time (published final) since the worker started",
            registry=None,
        )

    def observe(self, phase: str, seconds: float) -> None:
        self._phases[phase].observe(seconds)

    def windows(self, open_now: int, closed_now: int) -> None:
        """After a flush: the windows left open, and how many it closed."""
        self.windows_open.set(open_now)
        self.windows_closed.inc(closed_now)

    def collectors(self) -> Iterator[Collector]:
        yield from (self.seconds, self.windows_open, self.windows_closed)
