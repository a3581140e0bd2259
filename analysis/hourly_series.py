"""Hourly series made fit for a Granger test: aligned, short gaps filled, seasonality removed,
stationary. Pure numpy; a gap stays a gap (NaN) and the tests drop the rows that touch one.

- Gaps: a run of at most ``max_gap`` missing hours is filled linearly between its neighbours
  (a sensor that missed a report); a longer one is left missing, never invented.
- Seasonality: the mean of each hour of the week (168 slots) is subtracted, which removes the
  daily and weekly cycles two series share without either causing the other (heating and
  traffic both follow the clock).
- Stationarity: an augmented Dickey-Fuller test; a series whose unit root is not rejected at
  5 % is differenced once (a random walk's changes are tested, not its level).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from numpy.typing import NDArray
from statsmodels.tsa.stattools import adfuller

HOUR = 3600
WEEK_HOURS = 168
Series = NDArray[np.float64]


def hourly_grid(points: Mapping[int, float], start: int, hours: int) -> Series:
    """Values at each hour from ``start`` (epoch seconds, on an hour), NaN where none."""
    grid = np.full(hours, np.nan)
    for ts, value in points.items():
        i = (ts - start) // HOUR
        if 0 <= i < hours and (ts - start) % HOUR == 0:
            grid[i] = value
    return grid


def fill_short_gaps(x: Series, max_gap: int) -> Series:
    """``x`` with each run of at most ``max_gap`` NaNs between two values filled linearly."""
    out = x.copy()
    missing = np.isnan(out)
    i, n = 0, len(out)
    while i < n:
        if not missing[i]:
            i += 1
            continue
        j = i
        while j < n and missing[j]:
            j += 1
        if i > 0 and j < n and j - i <= max_gap:
            out[i:j] = np.interp(np.arange(i, j), [i - 1, j], [out[i - 1], out[j]])
        i = j
    return out


def deseasonalise(x: Series, start: int) -> tuple[Series, int]:
    """``x`` minus the mean of its hour of the week (over the values present), and how many
    means were fitted (the degrees of freedom the test must not count again)."""
    slots = ((start // HOUR) + np.arange(len(x))) % WEEK_HOURS
    out = x.copy()
    fitted = 0
    for slot in range(WEEK_HOURS):
        mask = (slots == slot) & ~np.isnan(x)
        if mask.any():
            out[mask] -= x[mask].mean()
            fitted += 1
    return out, fitted


def is_stationary(x: Series, alpha: float = 0.05) -> bool:
    """The ADF test rejects a unit root at ``alpha`` (over the values present, in order)."""
    present = x[~np.isnan(x)]
    if len(present) < 30 or np.ptp(present) == 0:
        return True  # too short, or constant: nothing to difference
    return float(adfuller(present, autolag="AIC", result_object=False)[1]) < alpha


def stationary(x: Series) -> tuple[Series, bool]:
    """``x``, differenced once if it is not stationary; and whether it was differenced."""
    if is_stationary(x):
        return x, False
    diffed = np.full(len(x), np.nan)
    diffed[1:] = np.diff(x)  # a gap on either side makes the change a gap
    return diffed, True


def prepared(x: Series, start: int, max_gap: int) -> tuple[Series, int]:
    """Gaps filled up to ``max_gap`` hours, seasonality removed, made stationary; and the
    parameters that fitted (hour-of-week means), which ``granger_test`` takes as ``absorbed``."""
    seasonal, fitted = deseasonalise(fill_short_gaps(x, max_gap), start)
    return stationary(seasonal)[0], fitted
