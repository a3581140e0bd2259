"""Causal evidence benchmark: the synthetic validation table and the analysis's CPU cost.

1. Over ``--seeds`` draws (100) of every scenario of analysis/synthetic_series.py (four weeks of
   hourly values each), the recall of the planted links, the false discovery rate (pooled, as
   Benjamini-Hochberg controls it across a run's hypotheses) and, per scenario, how often an
   unlinked pair was reported (for the common driver: the spurious direct link). Targets (causal
   evidence issue): recall >= 0.9, FDR <= 0.1, spurious <= 5 %.
2. CPU seconds to prepare and test 20 hypotheses over 28 days of hourly data (target < 30).

Prints a table and saves JSON in bench/results/ (docs/causal-evidence.md quotes it).
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
from machine import describe
from results_file import report

from analysis.causal_validation import START, validate
from analysis.granger import FDR_Q, benjamini_hochberg, granger_test
from analysis.hourly_series import prepared
from analysis.synthetic_series import planted_var


def cost_of_hypotheses(count: int, hours: int, max_lag: int) -> float:
    """CPU seconds to prepare both series of ``count`` hypotheses and test them, with one
    confounder each, then Benjamini-Hochberg over all."""
    rng = np.random.default_rng(0)
    drawn = [planted_var(rng, hours) for _ in range(count)]
    t0 = time.process_time()
    p_values = []
    for scenario in drawn:
        cause, _ = prepared(scenario.series["x"], START, 3)
        effect, absorbed = prepared(scenario.series["y"], START, 3)
        confounder, _ = prepared(scenario.series["w"], START, 3)
        result = granger_test(cause, effect, max_lag, [confounder], absorbed)
        p_values.append(1.0 if result is None else result.p_value)
    benjamini_hochberg(p_values)
    return time.process_time() - t0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, default=100)
    parser.add_argument("--max-lag", type=int, default=6, help="hours (default 6)")
    args = parser.parse_args()
    t0 = time.process_time()
    tallies = validate(args.seeds, max_lag=args.max_lag)
    validation_cpu = time.process_time() - t0
    columns = ("linked", "found", "unlinked", "reported", "recall", "false +")
    print(f"{'scenario':<26} " + " ".join(f"{c:>9}" for c in columns))
    rows = {}
    for name, t in tallies.items():
        recall = "—" if t.recall is None else f"{t.recall:.2f}"
        fpr = "—" if t.false_positive_rate is None else f"{t.false_positive_rate:.3f}"
        print(
            f"{name:<26} "
            + " ".join(f"{v:>9}" for v in (t.linked, t.found, t.unlinked, t.false, recall, fpr))
        )
        rows[name] = {"linked": t.linked, "found": t.found, "unlinked": t.unlinked, "false": t.false}
    linked = sum(t.linked for t in tallies.values())
    discoveries = sum(t.discoveries for t in tallies.values())
    result = {
        "benchmark": "causal-evidence",
        "seeds": args.seeds,
        "hours_per_series": 672,
        "max_lag_hours": args.max_lag,
        "fdr_q": FDR_Q,
        "recall": round(sum(t.found for t in tallies.values()) / linked, 3),
        "false_discovery_rate": round(sum(t.false for t in tallies.values()) / max(discoveries, 1), 3),
        "spurious_common_driver": round(tallies["common driver"].false / args.seeds, 3),
        "validation_cpu_seconds": round(validation_cpu, 1),
        "cpu_seconds_20_hypotheses_28_days": round(cost_of_hypotheses(20, 672, args.max_lag), 2),
        "scenarios": rows,
        "machine": describe(),
    }
    print()
    report("causal-evidence", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
