"""Causal evidence's pure core: series preparation, the Granger test, Benjamini-Hochberg, the
synthetic validation's targets, and the hypotheses file read strictly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from analysis.causal_validation import START, validate
from analysis.granger import benjamini_hochberg, granger_test
from analysis.hourly_series import deseasonalise, fill_short_gaps, hourly_grid, prepared, stationary
from analysis.hypotheses import HypothesisError, load_hypotheses, parse_hypotheses
from analysis.synthetic_series import common_driver, planted_var
from reference.loader import DEFAULT_DIR
from streams.indicators.catalogue import INDICATORS

KNOWN = frozenset(INDICATORS)


def test_a_short_gap_is_filled_and_a_long_one_left_missing() -> None:
    x = np.array([1.0, np.nan, np.nan, 4.0, np.nan, np.nan, np.nan, np.nan, 9.0, np.nan])
    filled = fill_short_gaps(x, max_gap=3)
    assert filled[:4].tolist() == [1.0, 2.0, 3.0, 4.0]
    assert np.isnan(filled[4:8]).all() and filled[8] == 9.0
    assert np.isnan(filled[9])  # no value after it: never extrapolated


def test_the_grid_puts_each_value_at_its_hour() -> None:
    grid = hourly_grid({START: 1.0, START + 7200: 3.0, START + 1800: 99.0}, START, 4)
    assert grid[0] == 1.0 and grid[2] == 3.0 and np.isnan(grid[1]) and np.isnan(grid[3])


def test_a_weekly_cycle_is_removed_whole() -> None:
    t = np.arange(4 * 168)
    cycle = 10 * np.sin(2 * np.pi * t / 24) + 3 * np.cos(2 * np.pi * t / 168)
    out, fitted = deseasonalise(cycle + 7.0, START)
    assert fitted == 168 and np.allclose(out, 0.0)


def test_a_random_walk_is_differenced_and_white_noise_is_not() -> None:
    rng = np.random.default_rng(3)
    walk, noise = np.cumsum(rng.normal(size=600)), rng.normal(size=600)
    assert stationary(walk)[1] and not stationary(noise)[1]


def test_benjamini_hochberg_keeps_the_ranks_under_the_line() -> None:
    p = [0.001, 0.008, 0.039, 0.041, 0.042, 0.06, 0.074, 0.205, 0.212, 0.216]
    # q = 0.05 over 10: the line is 0.005 k; only ranks 1 and 2 are under it.
    assert benjamini_hochberg(p, 0.05) == [True, True] + [False] * 8
    assert benjamini_hochberg([], 0.05) == []


def test_a_planted_lag_is_found_in_its_direction_and_not_the_other() -> None:
    scenario = planted_var(np.random.default_rng(11), 672)
    x, _ = prepared(scenario.series["x"], START, 3)
    y, absorbed = prepared(scenario.series["y"], START, 3)
    forward = granger_test(x, y, 6, absorbed=absorbed)
    backward = granger_test(y, x, 6, absorbed=absorbed)
    assert forward is not None and backward is not None
    assert forward.p_value < 1e-6 and forward.lag >= 3 and forward.sign == 1
    assert forward.ccf_lag == 3 and forward.ccf > 0.2  # the prewhitened peak sits at the planted lag
    assert backward.p_value > 0.01


def test_a_common_driver_controlled_for_leaves_no_direct_link() -> None:
    scenario = common_driver(np.random.default_rng(5), 672)
    a, _ = prepared(scenario.series["a"], START, 3)
    b, absorbed = prepared(scenario.series["b"], START, 3)
    d, _ = prepared(scenario.series["d"], START, 3)
    uncontrolled = granger_test(a, b, 6, absorbed=absorbed)
    controlled = granger_test(a, b, 6, [d], absorbed=absorbed)
    assert uncontrolled is not None and controlled is not None
    assert uncontrolled.p_value < 1e-3  # a leads b through d
    assert controlled.p_value > 0.01


def test_gaps_are_masked_not_invented() -> None:
    scenario = planted_var(np.random.default_rng(2), 672)
    x, y = scenario.series["x"].copy(), scenario.series["y"].copy()
    y[100:160] = np.nan  # a sensor down for 60 hours: beyond any fill
    whole = granger_test(x, scenario.series["y"], 6)
    holed = granger_test(x, fill_short_gaps(y, 3), 6)
    assert whole is not None and holed is not None
    assert holed.n < whole.n - 60  # the rows touching the hole are gone


def test_the_synthetic_validation_meets_its_targets_on_20_seeds() -> None:
    # The table of docs/causal-evidence.md is the same over 100 seeds (bench/causal_validation.py).
    tallies = validate(20)
    planted = [t for t in tallies.values() if t.linked]
    recall = sum(t.found for t in planted) / sum(t.linked for t in planted)
    discoveries = sum(t.discoveries for t in tallies.values())
    false_rate = sum(t.false for t in tallies.values()) / discoveries
    spurious = tallies["common driver"].false / 20  # a -> b, d controlled for: the one unlinked pair
    assert recall >= 0.9 and false_rate <= 0.1 and spurious <= 0.05, (recall, false_rate, spurious)


def test_the_shipped_hypotheses_are_read() -> None:
    names = [h.name for h in load_hypotheses(DEFAULT_DIR / "hypotheses.toml", KNOWN)]
    assert names == ["cold-drives-heating", "traffic-drives-no2", "parking-drives-bikes"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"max_lag_hours": 0}, "max_lag_hours: a whole number of hours from 1 to 48"),
        ({"cause": {"indicator": "sunshine"}}, "'sunshine' is not an indicator"),
        ({"per": "street"}, "per: one of"),
        ({"lag": 3}, "unknown terms ['lag']"),
        ({"effect": {"indicator": "passenger_km", "where": {"mode": 3}}}, "each value a string"),
    ],
)
def test_a_wrong_term_is_refused_naming_the_hypothesis(change: dict[str, object], message: str) -> None:
    hypothesis = {
        "name": "h1", "cause": {"indicator": "traffic_vehicles"},
        "effect": {"indicator": "passenger_km"}, "max_lag_hours": 6, "max_gap_hours": 2,
    }  # fmt: skip
    with pytest.raises(HypothesisError, match="hypothesis h1") as refused:
        parse_hypotheses({"hypothesis": [hypothesis | change]}, KNOWN)
    assert message in str(refused.value)


def test_a_file_that_is_not_toml_says_so(tmp_path: Path) -> None:
    broken = tmp_path / "hypotheses.toml"
    broken.write_text("[[hypothesis]\nname = ", encoding="utf-8")
    with pytest.raises(HypothesisError, match="not TOML"):
        load_hypotheses(broken, KNOWN)
