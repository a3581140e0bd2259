"""The territory's year-to-date emissions, gross and net, and its trajectory, folded from
indicator updates; the shipped trajectory and sequestration files, read back."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from reference.loader import DEFAULT_DIR
from schemas.indicator import IndicatorUpdate, series_key
from schemas.local_calendar import ZoneCalendar
from sinks.carbon_trajectory import TargetPath, Trajectory
from sinks.territory_rollup import TerritoryRollup

GROSS = TargetPath(((2019, 2.0e9), (2030, 1.4e9), (2040, 0.5e9)))
NET = TargetPath(((2019, 2.0e9), (2040, 0.0)))
PATH = Trajectory(GROSS, NET, ((2022, 1.0e7),))
NOW = datetime(2026, 7, 2, 12, tzinfo=UTC)  # 2026-07-02T12:00: half of 2026 has elapsed


def ytd(indicator: str, commune: str, value: float, year: int = 2026) -> tuple[bytes, bytes]:
    update = IndicatorUpdate(
        indicator=indicator, unit="kgCO2e", window="ytd", window_start=datetime(year, 1, 1, tzinfo=UTC),
        window_end=NOW, dimensions={"commune": commune, "sector": "residential"}, value=value, updated_at=NOW,
    )  # fmt: skip
    return series_key(update), update.model_dump_json(by_alias=True).encode()


def test_the_paths_are_linear_between_their_waypoints_and_flat_beyond() -> None:
    assert PATH.annual_target(2019) == 2.0e9
    assert PATH.annual_target(2030) == pytest.approx(1.4e9)
    assert PATH.annual_target(2026) == pytest.approx(2.0e9 * (1 - 0.3 * 7 / 11))
    assert PATH.annual_target(2035) == pytest.approx((1.4e9 + 0.5e9) / 2)  # halfway to 2040
    assert PATH.annual_target(2045) == 0.5e9 and PATH.annual_target(2010) == 2.0e9  # flat beyond
    assert PATH.net.target(2026) == pytest.approx(2.0e9 * (1 - 7 / 21))
    assert PATH.net.target(2040) == 0.0
    # Sequestration as declared: the latest declaration up to the year, none before the first.
    assert (PATH.sequestered(2021), PATH.sequestered(2022), PATH.sequestered(2026)) == (0.0, 1.0e7, 1.0e7)


def test_the_shipped_files_give_the_programme_s_road() -> None:
    shipped = Trajectory.load(DEFAULT_DIR)
    assert shipped.annual_target(2019) == 2.0e9  # about 2 MtCO2e a year in 2019
    assert shipped.annual_target(2030) == pytest.approx(0.7 * 2.0e9)  # -30 % by 2030
    assert shipped.annual_target(2040) == pytest.approx(2.0e9 / 4)  # divided by 4 by 2040
    assert shipped.net.target(2040) == 0.0  # neutral in 2040
    assert shipped.sequestered(2026) == 1.0e7  # the cooperative's 10 000 tCO2e a year


def test_net_emissions_are_gross_minus_what_the_sinks_absorb_to_date() -> None:
    rollup = TerritoryRollup(PATH)
    rollup.offer(*ytd("emissions_kgco2e", "17300", 4.0e8))
    figures = {u.indicator: u.value for u in rollup.updates(NOW)}  # half of 2026 elapsed
    half = figures["territory_sequestration_kgco2e"]
    assert half == pytest.approx(1.0e7 * 0.5, rel=1e-3)
    assert figures["territory_net_emissions_kgco2e"] == 4.0e8 - half
    net_target = NET.target(2026) * 0.5
    assert figures["territory_net_trajectory_target_kgco2e"] == pytest.approx(net_target, rel=1e-3)
    assert figures["territory_net_trajectory_ratio"] == pytest.approx((4.0e8 - half) / net_target, rel=1e-6)


def test_no_net_ratio_when_the_net_target_is_zero() -> None:
    rollup = TerritoryRollup(PATH)
    rollup.offer(*ytd("emissions_kgco2e", "17300", 1.0e8, year=2040))
    figures = {u.indicator: u.value for u in rollup.updates(datetime(2040, 7, 2, 12, tzinfo=UTC))}
    assert figures["territory_net_trajectory_target_kgco2e"] == 0.0
    assert "territory_net_trajectory_ratio" not in figures  # neutral is zero, not a ratio
    assert figures["territory_net_emissions_kgco2e"] == pytest.approx(1.0e8 - 1.0e7 * 0.5, rel=1e-3)


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


def test_a_local_year_is_summed_under_its_own_number_from_its_local_new_year() -> None:
    paris = ZoneCalendar("Europe/Paris")
    rollup = TerritoryRollup(PATH, paris)
    key, value = ytd("emissions_kgco2e", "17300", 100.0, year=2026)
    rollup.offer(key, value.replace(b'"2026-01-01T00:00:00Z"', b'"2026-12-31T23:00:00Z"'))  # Paris's 2027
    rollup.offer(*ytd("emissions_kgco2e", "17028", 50.0, year=2026))  # 2026-01-01T00:00Z: Paris's 2026 still
    just_after = datetime(2026, 12, 31, 23, 30, tzinfo=UTC)  # 00:30 on 1 January 2027 in Paris
    figures = {(u.indicator, u.window_start, u.final): u.value for u in rollup.updates(just_after)}
    new_year = datetime(2026, 12, 31, 23, tzinfo=UTC)
    assert figures[("territory_emissions_kgco2e", new_year, False)] == 100.0  # not added to 2026's
    assert figures[("territory_emissions_kgco2e", datetime(2025, 12, 31, 23, tzinfo=UTC), True)] == 50.0
    # Half an hour of the local year has elapsed, not 366 days of the UTC one.
    target = figures[("territory_trajectory_target_kgco2e", new_year, False)]
    assert target == pytest.approx(PATH.annual_target(2027) * 1800 / (365 * 86400), rel=1e-6)
