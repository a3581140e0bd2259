"""What the analysis finds on series with a known causal graph, over many seeds: recall of the
planted links, false discovery rate, and how often a common driver makes a spurious direct
link. The table docs/causal-evidence.md quotes (bench/causal_validation.py prints and saves it).

Each seed draws every scenario (synthetic_series.py), prepares each series as the analysis of
real indicators does (hourly_series.py), tests every pair and applies Benjamini-Hochberg across
all the seed's pairs at once, as the analysis does across all hypotheses of a run.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from analysis.granger import FDR_Q, benjamini_hochberg, granger_test
from analysis.hourly_series import prepared
from analysis.synthetic_series import SCENARIOS

START = 345_600  # 1970-01-05T00:00Z, a Monday: the hours of the week line up with the seasons


@dataclass
class Tally:
    linked: int = 0
    found: int = 0  # linked pairs discovered
    discoveries: int = 0
    false: int = 0  # unlinked pairs discovered
    unlinked: int = 0

    @property
    def recall(self) -> float | None:
        return self.found / self.linked if self.linked else None

    @property
    def false_discovery_rate(self) -> float:
        return self.false / self.discoveries if self.discoveries else 0.0

    @property
    def false_positive_rate(self) -> float | None:
        return self.false / self.unlinked if self.unlinked else None


def validate(seeds: int, hours: int = 672, max_lag: int = 6, q: float = FDR_Q) -> dict[str, Tally]:
    """Per scenario, over ``seeds`` draws of ``hours`` hourly values (672: four weeks)."""
    tallies: dict[str, Tally] = defaultdict(Tally)
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        tested: list[tuple[str, bool, float]] = []  # scenario, linked, p-value
        for make in SCENARIOS:
            scenario = make(rng, hours)
            series = {name: prepared(x, START, max_gap=3) for name, x in scenario.series.items()}
            for pair in scenario.pairs:
                confounders = [series[name][0] for name in pair.confounders]
                (cause, _), (effect, absorbed) = series[pair.cause], series[pair.effect]
                result = granger_test(cause, effect, max_lag, confounders, absorbed)
                tested.append((scenario.name, pair.linked, 1.0 if result is None else result.p_value))
        discovered = benjamini_hochberg([p for _, _, p in tested], q)
        for (name, linked, _), found in zip(tested, discovered, strict=True):
            tally = tallies[name]
            tally.linked += linked
            tally.unlinked += not linked
            tally.found += linked and found
            tally.discoveries += found
            tally.false += found and not linked
    return dict(tallies)
