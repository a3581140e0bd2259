"""One run of the analysis: every hypothesis tested in every commune that has both series, over
the same window of hourly indicators, with the false discovery rate controlled across all the
tests of the run (Benjamini-Hochberg), as the synthetic validation measured it.

Pure: the hourly values come from a ``read`` function (analysis/influx_hourly.py reads them
from InfluxDB; the tests give their own), the evidence goes back as ``CausalEvidence`` records.

- ``per = "commune"`` pairs each commune's cause with the same commune's effect; a confounder
  is the commune's own series when it has one, else the mean of the communes that have it at
  each hour (a weather station stands for the territory's weather).
- ``per = "territory"`` tests the mean of the communes' series at each hour.
- A commune with one series and not the other is not tested, and not reported: the hypothesis
  does not apply there. A pair with too few complete hours is reported ``insufficient_data``,
  with the reason, and does not count in the false discovery rate.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from analysis.granger import FDR_Q, GrangerResult, benjamini_hochberg, granger_test
from analysis.hourly_series import HOUR, Series, hourly_grid, prepared
from analysis.hypotheses import Hypothesis, Selector
from schemas.causal_evidence import CausalEvidence

METHOD_VERSION = "1"
"""Version 1: short gaps filled, hour-of-week means removed, ADF then one difference, Granger's
F-test at the lag of lowest BIC with the confounders at lags 0..max, a prewhitened
cross-correlation, Benjamini-Hochberg across the run (docs/causal-evidence.md). A change to any
of these is a new version: evidence of two versions is not compared."""

TERRITORY = ""
ByCommune = Mapping[str, Mapping[int, float]]
Read = Callable[[Selector], ByCommune]


def series_name(selector: Selector) -> str:
    """``indicator{dimension=value,...}``: how a record names a series."""
    where = ",".join(f"{k}={v}" for k, v in selector.where)
    return f"{selector.indicator}{{{where}}}" if where else selector.indicator


def hourly_mean(series: ByCommune) -> dict[int, float]:
    """At each hour, the mean of the communes' values present then."""
    sums: dict[int, float] = {}
    counts: dict[int, int] = {}
    for points in series.values():
        for ts, value in points.items():
            sums[ts] = sums.get(ts, 0.0) + value
            counts[ts] = counts.get(ts, 0) + 1
    return {ts: total / counts[ts] for ts, total in sums.items()}


@dataclass(frozen=True)
class _Pair:
    hypothesis: Hypothesis
    commune: str
    cause: Mapping[int, float]
    effect: Mapping[int, float]
    confounders: Sequence[Mapping[int, float]]


def _pairs(hypothesis: Hypothesis, read: Read) -> list[_Pair]:
    cause, effect = read(hypothesis.cause), read(hypothesis.effect)
    confounders = [read(selector) for selector in hypothesis.confounders]
    if hypothesis.per == "territory":
        if not cause or not effect:
            return []
        means = [hourly_mean(c) for c in confounders]
        return [_Pair(hypothesis, TERRITORY, hourly_mean(cause), hourly_mean(effect), means)]
    territory_means = [hourly_mean(c) for c in confounders]
    return [
        _Pair(
            hypothesis,
            commune,
            cause[commune],
            effect[commune],
            [c.get(commune) or mean for c, mean in zip(confounders, territory_means, strict=True)],
        )
        for commune in sorted(set(cause) & set(effect))
    ]


def _test(pair: _Pair, start: int, hours: int) -> GrangerResult | str:
    """The test's result, or why it could not be run."""
    h = pair.hypothesis
    grids = [hourly_grid(points, start, hours) for points in (pair.cause, pair.effect, *pair.confounders)]
    for name, grid in zip(("cause", "effect", *(series_name(c) for c in h.confounders)), grids, strict=True):
        if np.isnan(grid).all():
            return f"no hourly value of the {name} in the window"
    ready: list[tuple[Series, int]] = [prepared(grid, start, h.max_gap_hours) for grid in grids]
    (cause, _), (effect, absorbed) = ready[0], ready[1]
    result = granger_test(cause, effect, h.max_lag_hours, [z for z, _ in ready[2:]], absorbed)
    if result is None:
        return f"too few complete hours to fit lags up to {h.max_lag_hours} h"
    return result


def _whole_hour(moment: datetime) -> int:
    ts = int(moment.timestamp())
    if ts % HOUR:
        raise ValueError(f"{moment.isoformat()} is not on a whole hour")
    return ts


def analyse(
    hypotheses: Sequence[Hypothesis],
    read: Read,
    start: datetime,
    end: datetime,
    now: datetime,
    q: float = FDR_Q,
) -> list[CausalEvidence]:
    """The evidence for every hypothesis and commune over the hours from ``start`` to ``end``."""
    begin, stop = _whole_hour(start), _whole_hour(end)
    if stop <= begin:
        raise ValueError("the window ends before it starts")
    hours = (stop - begin) // HOUR
    outcomes = [(pair, _test(pair, begin, hours)) for h in hypotheses for pair in _pairs(h, read)]
    tested = [result for _, result in outcomes if isinstance(result, GrangerResult)]
    found = iter(benjamini_hochberg([r.p_value for r in tested], q))
    records = []
    for pair, result in outcomes:
        h = pair.hypothesis
        common = {
            "hypothesis": h.name,
            "question": h.question,
            "cause": series_name(h.cause),
            "effect": series_name(h.effect),
            "confounders": [series_name(c) for c in h.confounders],
            "commune": pair.commune,
            "window_start": datetime.fromtimestamp(begin, UTC),
            "window_end": datetime.fromtimestamp(stop, UTC),
            "q": q,
            "tests_in_run": len(tested),
            "method_version": METHOD_VERSION,
            "computed_at": now,
        }
        if isinstance(result, str):
            records.append(CausalEvidence(**common, status="insufficient_data", detail=result, n=0))
            continue
        records.append(
            CausalEvidence(
                **common,
                status="evidence" if next(found) else "no_evidence",
                lag_hours=result.lag,
                effect_size=result.effect_size,
                sign=result.sign,
                p_value=min(1.0, max(0.0, result.p_value)),
                n=result.n,
                ccf_lag_hours=result.ccf_lag,
                ccf=max(-1.0, min(1.0, result.ccf)),
            )
        )
    return records
