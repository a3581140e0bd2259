"""The soak's pass/fail rules, as pure functions of its samples (``soak_sampling.py``) and of
the simulator's report: no I/O.

- **memory**: the RSS of each service process (bridge, worker, sink) at the end of the load
  is less than ``limit_percent`` (5 %) above its RSS at the first sample at or after the
  warm-up;
- **lag bounded**: over the samples after the warm-up, split in two halves by time, each
  group's largest lag in the second half exceeds its largest in the first half by at most
  ``tolerance_seconds`` (10) of what its topics received per second over those samples. A
  group that keeps up shows a few seconds of records between two commits, and its peak does
  not move from one half to the next; a group that falls behind steadily grows by more than
  the tolerance. (A ratio, "at most twice the first half's", misses exactly that: a lag
  growing linearly from the start of the load is only 1.7 times larger at 30 minutes than at
  17.5.) ``trend_records_per_second``, the least-squares slope over the same samples, is saved
  beside it to read, not judged;
- **drained**: once the load stops, every group reaches the end of its topics within the
  settle timeout (``drained_after_seconds`` not None);
- **reconciliation**: the worker's validation counters moved by exactly what the simulator's
  report expects (accepted, dead-lettered, duplicates), and ``received`` by the messages it
  published, which is also the sum of the three outcomes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

Sample = dict[str, Any]
"""``t_seconds`` since the load started, ``phase`` ("load", "backfill": under load with a
backfill running, or "after"), ``processes`` (name ->
rss_mb, cpu_seconds, cpu_percent), ``lag`` (stage -> records, end), ``worker_received``,
``mosquitto_store_messages``, ``mosquitto_retained_messages`` and, with the live probe,
``probe_delay_seconds`` (its readings found since the previous sample; not judged)."""


def load_samples(samples: Sequence[Sample], warmup_seconds: float) -> list[Sample]:
    """The samples taken under load at or after the warm-up."""
    return [
        s for s in samples if s["phase"] in ("load", "backfill") and s["t_seconds"] >= warmup_seconds - 1e-6
    ]


def rss_growth(
    samples: Sequence[Sample], warmup_seconds: float, names: Sequence[str], limit_percent: float = 5.0
) -> dict[str, dict[str, Any]]:
    """Per process: RSS at the warm-up sample and at the end of the load, growth in %, passed."""
    measured = load_samples(samples, warmup_seconds)
    out: dict[str, dict[str, Any]] = {}
    for name in names:
        if len(measured) < 2:
            out[name] = {"passed": False, "note": "fewer than two samples under load after the warm-up"}
            continue
        base = measured[0]["processes"][name]["rss_mb"]
        end = measured[-1]["processes"][name]["rss_mb"]
        if base is None or end is None or base <= 0:
            out[name] = {"passed": False, "note": "the process was gone at a sample"}
            continue
        growth = (end - base) / base * 100
        out[name] = {
            "at_warmup_mb": base,
            "at_warmup_t_seconds": measured[0]["t_seconds"],
            "at_end_mb": end,
            "at_end_t_seconds": measured[-1]["t_seconds"],
            "peak_mb": max(s["processes"][name]["rss_mb"] or 0.0 for s in measured),
            "growth_percent": round(growth, 2),
            "limit_percent": limit_percent,
            "passed": growth < limit_percent,
        }
    return out


def lag_bounded(
    samples: Sequence[Sample], warmup_seconds: float, stages: Sequence[str], tolerance_seconds: float = 10.0
) -> dict[str, dict[str, Any]]:
    """Per stage: the largest lag of each half after the warm-up, the bound, passed."""
    measured = load_samples(samples, warmup_seconds)
    out: dict[str, dict[str, Any]] = {}
    if len(measured) < 2:
        return {name: {"passed": False, "note": "fewer than two samples under load after the warm-up"}
                for name in stages}  # fmt: skip
    first_t, last_t = measured[0]["t_seconds"], measured[-1]["t_seconds"]
    middle = (first_t + last_t) / 2
    first = [s for s in measured if s["t_seconds"] <= middle]
    second = [s for s in measured if s["t_seconds"] > middle]
    times = [s["t_seconds"] for s in measured]
    for name in stages:
        written = measured[-1]["lag"][name]["end"] - measured[0]["lag"][name]["end"]
        rate = written / max(1e-9, last_t - first_t)
        max_first = max(s["lag"][name]["records"] for s in first)
        max_second = max(s["lag"][name]["records"] for s in second)
        tolerance = rate * tolerance_seconds
        bound = max_first + tolerance
        out[name] = {
            "max_first_half_records": max_first,
            "max_second_half_records": max_second,
            "records_written_per_second": round(rate, 1),
            "tolerance_records": round(tolerance),
            "bound_records": round(bound),
            "trend_records_per_second": round(slope(times, [s["lag"][name]["records"] for s in measured]), 2),
            "passed": max_second <= bound,
        }
    return out


def slope(xs: Sequence[float], ys: Sequence[float]) -> float:
    """The least-squares slope of ``ys`` against ``xs`` (0 with fewer than two distinct xs)."""
    n = len(xs)
    mean_x, mean_y = sum(xs) / n, sum(ys) / n
    spread = sum((x - mean_x) ** 2 for x in xs)
    if spread == 0:
        return 0.0
    return sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / spread


def reconciliation(report: dict[str, Any] | None, moved: dict[str, int] | None) -> dict[str, Any]:
    """The simulator's report against what the worker's counters moved by."""
    if report is None or moved is None:
        return {"passed": False, "note": "no simulator report or no counters (interrupted?)"}
    expected = {"received": int(report["messages"]), **report["expected_at_validation"]}
    outcomes = sum(moved[k] for k in ("accepted", "dead_lettered", "duplicates"))
    return {
        "expected": expected,
        "counters_moved": moved,
        "received_is_the_sum": moved["received"] == outcomes,
        "all_acknowledged": report["acknowledged"] == report["messages"],
        "passed": moved == expected
        and moved["received"] == outcomes
        and report["acknowledged"] == report["messages"],
    }


def verdict(
    samples: Sequence[Sample],
    warmup_seconds: float,
    services: Sequence[str],
    stages: Sequence[str],
    drained_after_seconds: float | None,
    report: dict[str, Any] | None,
    moved: dict[str, int] | None,
    tolerance_seconds: float = 10.0,
) -> dict[str, Any]:
    """Every rule's detail, and ``passed`` when all hold."""
    memory = rss_growth(samples, warmup_seconds, services)
    lag = lag_bounded(samples, warmup_seconds, stages, tolerance_seconds)
    balance = reconciliation(report, moved)
    drained = drained_after_seconds is not None
    return {
        "rss_growth": memory,
        "lag_bounded": lag,
        "drained": {"passed": drained, "after_load_seconds": drained_after_seconds},
        "reconciliation": balance,
        "passed": all(m["passed"] for m in memory.values())
        and all(g["passed"] for g in lag.values())
        and drained
        and balance["passed"],
    }
