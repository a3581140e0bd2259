"""One sample of the soak (``soak.py``): each process's resident memory and the CPU it used
since the last sample, read from /proc; each consumer group's lag, read from Kafka.

Lag is what a group has not committed yet: Σ over the partitions of its topics of (end offset
- committed offset), in records. The worker and the sink commit every few seconds, so a group
keeping up still shows a few seconds of records.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench_topics import committed_offsets, topic_ends
from process_stats import cpu_seconds

from config.settings import Settings


@dataclass(frozen=True)
class LagStage:
    """A consumer group on some topics: the lag sampled as one figure."""

    name: str
    group: str
    topics: tuple[str, ...]


def rss_mb(pid: int) -> float | None:
    """Resident memory (VmRSS) of ``pid`` now, in MiB; None if the process is gone."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return None


def _cpu(pid: int) -> float | None:
    try:
        return cpu_seconds(pid)
    except OSError:
        return None


class ProcessSampler:
    """RSS now and CPU-seconds since the previous ``sample`` of each named process."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids: dict[str, int] = {}
        self._cpu: dict[str, float | None] = {}
        self._at = time.monotonic()
        for name, pid in pids.items():
            self.add(name, pid)

    def add(self, name: str, pid: int) -> None:
        """Watch one more process from now on (the load, started after the services)."""
        self.pids[name] = pid
        self._cpu[name] = _cpu(pid)

    def sample(self) -> dict[str, dict[str, float | None]]:
        """Per process: ``rss_mb``, ``cpu_seconds`` used since the previous sample and
        ``cpu_percent`` of one core over that interval (None for a process that is gone)."""
        now = time.monotonic()
        interval = max(1e-9, now - self._at)
        self._at = now
        out: dict[str, dict[str, float | None]] = {}
        for name, pid in self.pids.items():
            before, after = self._cpu[name], _cpu(pid)
            self._cpu[name] = after
            used = after - before if after is not None and before is not None else None
            out[name] = {
                "rss_mb": _round(rss_mb(pid)),
                "cpu_seconds": _round(used),
                "cpu_percent": _round(used / interval * 100 if used is not None else None),
            }
        return out


async def stage_lags(settings: Settings, stages: Sequence[LagStage]) -> dict[str, dict[str, int]]:
    """Per stage: ``records`` not committed by its group yet, and ``end``, the sum of its
    topics' end offsets (what was written so far: the write rate between samples)."""
    out: dict[str, dict[str, int]] = {}
    for stage in stages:
        ends = await topic_ends(settings, list(stage.topics))
        committed = await committed_offsets(settings, stage.group)
        lag = sum(max(0, end - committed.get(tp, 0)) for tp, end in ends.items())
        out[stage.name] = {"records": lag, "end": sum(ends.values())}
    return out


def _round(value: float | None) -> float | None:
    return round(value, 2) if value is not None else None
