"""Write latency of the sink: a bounded window of recent samples, summarised as percentiles."""

from __future__ import annotations

from collections import deque


class WriteLatency:
    """The last ``keep`` write durations (seconds); enough for p50/p99 without growing."""

    def __init__(self, keep: int = 1024) -> None:
        self._samples: deque[float] = deque(maxlen=keep)
        self.count = 0

    def record(self, seconds: float) -> None:
        self._samples.append(seconds)
        self.count += 1

    def summary(self) -> dict[str, float | int]:
        if not self._samples:
            return {"count": 0}
        ordered = sorted(self._samples)

        def pct(q: float) -> float:
            return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 4)

        return {"count": self.count, "p50": pct(0.5), "p99": pct(0.99), "max": round(ordered[-1], 4)}
