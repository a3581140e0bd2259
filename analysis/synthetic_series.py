"""Series with a known causal graph, to measure what the analysis finds (recall, false
discoveries, spurious links from a common driver). Pure numpy, one generator per scenario.

Each scenario gives hourly series over ``hours`` and the pairs that are truly linked, with
the series to control for: what the analysis is told, as a hypothesis would tell it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

Series = NDArray[np.float64]


@dataclass(frozen=True)
class Pair:
    cause: str
    effect: str
    linked: bool
    confounders: tuple[str, ...] = ()


@dataclass(frozen=True)
class Scenario:
    name: str
    series: dict[str, Series]
    pairs: list[Pair] = field(default_factory=list)


def _ar1(rng: np.random.Generator, hours: int, phi: float, scale: float = 1.0) -> Series:
    x = np.zeros(hours)
    noise = rng.normal(0, scale, hours)
    for t in range(1, hours):
        x[t] = phi * x[t - 1] + noise[t]
    return x


def planted_var(rng: np.random.Generator, hours: int) -> Scenario:
    """x drives y with a lag of 3 hours; w is independent of both."""
    x, w = _ar1(rng, hours, 0.6), _ar1(rng, hours, 0.5)
    y = np.zeros(hours)
    noise = rng.normal(0, 1, hours)
    for t in range(3, hours):
        y[t] = 0.4 * y[t - 1] + 0.5 * x[t - 3] + noise[t]
    return Scenario(
        "planted lag", {"x": x, "y": y, "w": w},
        [Pair("x", "y", True), Pair("y", "x", False), Pair("w", "y", False), Pair("x", "w", False)],
    )  # fmt: skip


def weak_lag(rng: np.random.Generator, hours: int) -> Scenario:
    """x drives y at 2 hours with a small coefficient: the cause explains about 2 % of the
    effect's variance, as a real driver among many others might."""
    x = _ar1(rng, hours, 0.6)
    y = np.zeros(hours)
    noise = rng.normal(0, 1, hours)
    for t in range(2, hours):
        y[t] = 0.4 * y[t - 1] + 0.15 * x[t - 2] + noise[t]
    return Scenario("weak lag", {"x": x, "y": y}, [Pair("x", "y", True), Pair("y", "x", False)])


def common_driver(rng: np.random.Generator, hours: int) -> Scenario:
    """d drives a (at 1 hour) and b (at 4 hours): a seems to lead b unless d is controlled for."""
    d = _ar1(rng, hours, 0.7)
    a, b = np.zeros(hours), np.zeros(hours)
    na, nb = rng.normal(0, 1, hours), rng.normal(0, 1, hours)
    for t in range(4, hours):
        a[t] = 0.3 * a[t - 1] + 0.8 * d[t - 1] + na[t]
        b[t] = 0.3 * b[t - 1] + 0.8 * d[t - 4] + nb[t]
    return Scenario(
        "common driver", {"d": d, "a": a, "b": b},
        [Pair("d", "a", True), Pair("d", "b", True), Pair("a", "b", False, ("d",))],
    )  # fmt: skip


def random_walks(rng: np.random.Generator, hours: int) -> Scenario:
    """Two independent random walks: their levels drift together by chance."""
    p, q = np.cumsum(rng.normal(0, 1, hours)), np.cumsum(rng.normal(0, 1, hours))
    return Scenario(
        "independent random walks", {"p": p, "q": q}, [Pair("p", "q", False), Pair("q", "p", False)]
    )


def seasonal_unlinked(rng: np.random.Generator, hours: int) -> Scenario:
    """Two series with the same daily and weekly cycle and no link between them."""
    t = np.arange(hours)
    cycle = 5 * np.sin(2 * np.pi * t / 24) + 2 * np.sin(2 * np.pi * t / 168)
    u = cycle + _ar1(rng, hours, 0.5)
    v = 0.8 * np.roll(cycle, 2) + _ar1(rng, hours, 0.5)
    return Scenario("seasonal, no link", {"u": u, "v": v}, [Pair("u", "v", False), Pair("v", "u", False)])


SCENARIOS = (planted_var, weak_lag, common_driver, random_walks, seasonal_unlinked)
