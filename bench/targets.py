"""The benchmark issue's targets for this 2-core machine, and what a suite run measured against them."""

from __future__ import annotations

from typing import Any


def _best_end_to_end(results: dict[str, Any]) -> float | None:
    rates = [r["end_to_end_readings_per_second"] for r in results["end_to_end"]["runs"] if r["all_visible"]]
    return max(rates) if rates else None


def _p99_at(results: dict[str, Any], offered: float) -> float | None:
    for run in results["end_to_end"]["runs"]:
        if run["offered_readings_per_second"] == offered:
            p99: float | None = run["latency_seconds"]["p99"]
            return p99
    return None


def _stage(results: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in results["stages"] if s["stage"] == name)


def evaluate(results: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per target: what, the measure, the target, met or not (None: not measured)."""
    peers = results["peers"]
    footprint = results["end_to_end"]["footprint"]
    rows = [
        ("end to end, readings/s sustained (best run)", _best_end_to_end(results), ">=", 30_000),
        ("p99 publish to visible at 5 000 readings/s (s)", _p99_at(results, 5000), "<=", 1.0),
        (
            "enrichment + aggregation, readings per CPU-second (one worker process)",
            _stage(results, "enrichment_aggregation")["readings_per_cpu_second"],
            ">=",
            100_000,
        ),
        ("ours / Quix Streams, readings/s", peers["ours_over_quix"]["readings_per_second"], ">=", 1.5),
        ("ours / naive faust, readings/s", peers["ours_over_naive_faust"]["readings_per_second"], ">=", 10),
        (
            "CPU-seconds per million readings, bridge + worker + sink",
            footprint["ours_cpu_seconds_per_million_readings"],
            "<=",
            10,
        ),
        ("worker peak RSS (MB)", footprint["peak_rss_mb"]["worker"], "<=", 250),
        (
            "idle service, % of one core (bridge + worker + sink)",
            footprint["idle_percent_of_a_core_ours"],
            "<=",
            1,
        ),
    ]
    out = []
    for what, measured, sense, target in rows:
        met = None if measured is None else (measured >= target if sense == ">=" else measured <= target)
        out.append({"target": what, "measured": measured, "wanted": f"{sense} {target}", "met": met})
    return out
