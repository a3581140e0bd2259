"""How long the indicator flushes take, by phase, as Prometheus histograms (docs/metrics.md).

A flush (once a second) computes every partition's updates, waits until Kafka has them, then
writes the checkpoints that are due: each phase's duration is one observation, so a
scrape shows where a slow flush spends its time without reading the worker's log.
"""

from __future__ import annotations

from prometheus_client import Histogram

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

    def observe(self, phase: str, seconds: float) -> None:
        self._phases[phase].observe(seconds)
