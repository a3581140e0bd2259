"""The territory's year-to-date emissions and trajectory, folded from indicator updates."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from schemas.indicator import IndicatorUpdate, series_key
from sinks.territory_rollup import TerritoryRollup, Trajectory

PATH = Trajectory(2019, 2.0e9, 2030, 0.70)
NOW = datetime(2026, 7, 2, 12, tzinfo=UTC)  # 2026-07-02T12:00: half of 2026 has elapsed


def ytd(indicator: str, commune: str, value: float, year: int = 2026) -> tuple[bytes, bytes]:
    update = IndicatorUpdate(
        indicator=indicator, unit="kgCO2e", window="ytd", window_start=datetime(year, 1, 1, tzinfo=UTC),
        window_end=NOW, dimensions={"commune": commune, "sector": "residential"}, value=value, updated_at=NOW,
    )  # fmt: skip
    return series_key(update), update.model_dump_json(by_alias=True).encode()


def test_the_path_is_linear_from_the_baseline_to_the_milestone() -> None:
    assert PATH.annual_target(2019) == 2.0e9
    assert PATH.annual_target(2030) == pytest.approx(1.4e9)
    assert PATH.annual_target(2026) == pytest.approx(2.0e9 * (1 - 0.3 * 7 / 11))
    assert PATH.annual_target(2035) == pytest.approx(1.4e9)  # flat after the milestone


def test_the_territory_is_the_sum_of_the_latest_value_of_each_series() -> None:
    rollup = TerritoryRollup(PATH)
    rollup.offer(*ytd("emissions_kgco2e", "17300", 100.0))
    rollup.offer(*ytd("emissions_kgco2e", "17028", 50.0))
    rollup.offer(*ytd("mobility_emissions_kgco2e", "17300", 20.0))
    rollup.offer(*ytd("emissions_kgco2e", "17300", 130.0))  # the same series, later: replaces
    rollup.offer(*ytd("energy_consumed_kwh", "17300", 9999.0))  # not an emission
    figures = {u.indicator: u for u in rollup.updates(NOW)}
    assert figures["territory_emissions_kgco2e"].value == 130.0 + 50.0 + 20.0
    target = PATH.annual_target(2026) * 0.5
    assert figures["territory_trajectory_target_kgco2e"].value == pytest.approx(target, rel=1e-3)
    assert figures["territory_trajectory_ratio"].value == pytest.approx(200.0 / target, rel=1e-3)
    assert rollup.updates(NOW) == []  # nothing changed since


def test_a_replayed_update_changes_nothing() -> None:
    rollup = TerritoryRollup(PATH)
    rollup.offer(*ytd("emissions_kgco2e", "17300", 100.0))
    rollup.updates(NOW)
    rollup.offer(*ytd("emissions_kgco2e", "17300", 100.0))
    assert rollup.updates(NOW) == []
