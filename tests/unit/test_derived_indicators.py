"""Derived indicators from one partition's window sums, checked against hand arithmetic."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from schemas.local_calendar import MONTH
from streams.indicators.derived import derive
from streams.indicators.enrichment import Contribution, Measure
from streams.indicators.window_state import DAY, WindowState, WindowUpdate

H = datetime(2026, 3, 2, 10, tzinfo=UTC)
HOUR = 3600
WHO = {"no2": 25.0, "pm10": 45.0, "pm25": 15.0}


def reading(
    event_id: str, minutes: int, *measures: tuple[str, tuple[tuple[str, str], ...], float]
) -> Contribution:
    return Contribution(
        event_id, "p", H + timedelta(minutes=minutes), tuple(Measure(*m) for m in measures), "p"
    )


def energy(event_id: str, minutes: int, sector: str, carrier: str, kwh: float) -> Contribution:
    dims = (("carrier", carrier), ("commune", "17300"), ("sector", sector))
    return reading(event_id, minutes, ("energy_consumed_kwh", dims, kwh))


def derived_of(state: WindowState, name: str, size: int) -> dict[tuple[tuple[str, str], ...], WindowUpdate]:
    updates = state.flush()
    return {u.dimensions: u for u in derive(updates, state, WHO) if u.indicator == name and u.size == size}


def test_renewable_share_is_production_over_all_consumption_of_the_commune() -> None:
    state = WindowState(sizes=(HOUR, DAY), grace_seconds=0)
    state.add_all(
        [
            energy("a", 5, "residential", "electricity", 10.0),
            energy("b", 10, "tertiary", "natural_gas", 30.0),
            reading("c", 15, ("renewable_production_kwh", (("commune", "17300"),), 8.0)),
        ]
    )
    share = derived_of(state, "renewable_share_ratio", HOUR)[(("commune", "17300"),)]
    assert share.total == 8.0 / (10.0 + 30.0)  # 0.2
    assert not share.final
    # A later reading in the next hour closes the hour: the share is republished, final,
    # from terms the flush has just taken out of the open windows.
    state.add_all([energy("d", 65, "residential", "electricity", 1.0)])
    updates = state.flush()
    closed = {
        u.start: u
        for u in derive(updates, state, WHO)
        if u.indicator == "renewable_share_ratio" and u.size == HOUR
    }
    assert (closed[int(H.timestamp())].total, closed[int(H.timestamp())].final) == (0.2, True)
    assert closed[int(H.timestamp()) + HOUR].total == 0.0  # no production yet in the next hour


def test_a_share_needs_some_consumption() -> None:
    state = WindowState(sizes=(HOUR,), grace_seconds=0)
    state.add_all([reading("c", 15, ("renewable_production_kwh", (("commune", "17300"),), 8.0))])
    assert derived_of(state, "renewable_share_ratio", HOUR) == {}


def test_modal_share_divides_each_mode_by_all_modes() -> None:
    state = WindowState(sizes=(HOUR,), grace_seconds=0)
    bike, bus = (("commune", "17300"), ("mode", "bike")), (("commune", "17300"), ("mode", "bus"))
    state.add_all(
        [
            reading("t1", 1, ("passenger_km", bike, 2.0)),
            reading("t2", 2, ("passenger_km", bus, 4.0)),
            reading("t3", 3, ("passenger_km", bus, 2.0)),
        ]
    )
    shares = derived_of(state, "modal_share_ratio", HOUR)
    assert {dict(d)["mode"]: u.total for d, u in shares.items()} == {"bike": 0.25, "bus": 0.75}


def test_who_exceedance_compares_the_daily_mean_with_the_guideline() -> None:
    state = WindowState(sizes=(HOUR, DAY), grace_seconds=0)
    no2 = (("commune", "17300"), ("quantity", "no2"), ("station", "s1"))
    pm10 = (("commune", "17300"), ("quantity", "pm10"), ("station", "s1"))
    temperature = (("commune", "17300"), ("quantity", "temperature"), ("station", "s1"))
    state.add_all(
        [
            reading("n1", 0, ("environment_value", no2, 20.0)),
            reading("n2", 60, ("environment_value", no2, 40.0)),  # mean 30 > 25
            reading("p1", 0, ("environment_value", pm10, 20.0)),  # mean 20 < 45
            reading("t1", 0, ("environment_value", temperature, 35.0)),  # no guideline
        ]
    )
    flags = {dict(d)["quantity"]: u.total for d, u in derived_of(state, "who_exceedance", DAY).items()}
    assert flags == {"no2": 1.0, "pm10": 0.0}


POPULATIONS = {"17300": 79851, "17028": 9746}  # INSEE populations of La Rochelle and Aytré


def emitted(
    event_id: str, minutes: int, indicator: str, dims: tuple[tuple[str, str], ...], kg: float
) -> Contribution:
    return reading(event_id, minutes, (indicator, dims, kg))


def test_emissions_per_inhabitant_sum_the_commune_s_energy_mobility_and_charging_emissions() -> None:
    """Per inhabitant of the commune's day and year to date: energy (every sector and carrier),
    mobility and EV charging emissions, as the territory's total counts them, over its INSEE
    population; per day and year to date only, and another commune's apart."""
    state = WindowState(sizes=(HOUR, DAY), grace_seconds=0)
    la_rochelle = (("commune", "17300"),)
    state.add_all(
        [
            emitted(
                "a",
                5,
                "emissions_kgco2e",
                (("carrier", "natural_gas"), *la_rochelle, ("sector", "residential")),
                1200.0,
            ),
            emitted(
                "b",
                6,
                "emissions_kgco2e",
                (("carrier", "electricity"), *la_rochelle, ("sector", "tertiary")),
                300.0,
            ),
            emitted("c", 7, "mobility_emissions_kgco2e", (*la_rochelle, ("mode", "bus")), 96.0),
            emitted("d", 8, "ev_charging_emissions_kgco2e", la_rochelle, 2.5),
            emitted(
                "e",
                9,
                "emissions_kgco2e",
                (("carrier", "heating_oil"), ("commune", "17028"), ("sector", "residential")),
                487.3,
            ),
        ]
    )
    updates = state.flush()
    found = {
        (u.indicator, dict(u.dimensions)["commune"], u.size): u
        for u in derive(updates, state, WHO, POPULATIONS)
        if "per_inhabitant" in u.indicator
    }
    by_hand = (1200.0 + 300.0 + 96.0 + 2.5) / 79851  # 0.020018...
    assert found[("emissions_per_inhabitant_kgco2e", "17300", DAY)].total == by_hand
    assert found[("emissions_per_inhabitant_kgco2e", "17300", 0)].total == by_hand  # year to date
    assert found[("emissions_per_inhabitant_kgco2e", "17028", DAY)].total == 487.3 / 9746
    assert not found[("emissions_per_inhabitant_kgco2e", "17300", DAY)].final  # the day is open
    assert {size for _, _, size in found} == {
        DAY,
        0,
    }  # no hourly figure per inhabitant (no month counted here)
    assert not any(name == "energy_consumed_per_inhabitant_kwh" for name, _, _ in found)  # no energy read


def test_energy_per_inhabitant_and_a_commune_without_population() -> None:
    state = WindowState(sizes=(DAY,), grace_seconds=0)
    state.add_all(
        [energy("a", 5, "residential", "electricity", 10.0), energy("b", 6, "tertiary", "natural_gas", 30.0)]
    )
    updates = state.flush()
    per_kwh = [
        u
        for u in derive(updates, state, WHO, POPULATIONS)
        if u.indicator == "energy_consumed_per_inhabitant_kwh"
    ]
    assert [(u.size, u.total) for u in sorted(per_kwh, key=lambda u: u.size)] == [
        (0, 40.0 / 79851),
        (DAY, 40.0 / 79851),
    ]
    assert not [u for u in derive(updates, state, WHO, {"17300": 0}) if "per_inhabitant" in u.indicator]
    assert not [
        u for u in derive(updates, state, WHO) if "per_inhabitant" in u.indicator
    ]  # no populations given


def test_a_local_month_per_inhabitant_sums_its_days_and_closes_with_the_month() -> None:
    """A month (local, as the state's calendar cuts it) per inhabitant: the month's energy over
    the population, open while the month is, final once a reading of the next month closes it."""
    state = WindowState(sizes=(DAY, MONTH), grace_seconds=0)
    state.add_all(
        [
            energy("a", 5, "residential", "electricity", 10.0),
            energy("b", 60 * 24 * 3, "tertiary", "natural_gas", 30.0),
        ]
    )
    monthly = [
        u
        for u in derive(state.flush(), state, WHO, POPULATIONS)
        if u.indicator == "energy_consumed_per_inhabitant_kwh" and u.size == MONTH
    ]
    assert [(u.total, u.final) for u in monthly] == [(40.0 / 79851, False)]
    april = int((H.replace(month=4, day=1, hour=0) + timedelta(hours=1)).timestamp())  # 2 April 01:00
    state.add_all([energy("c", (april - int(H.timestamp())) // 60, "residential", "electricity", 5.0)])
    closed = {
        u.start: u
        for u in derive(state.flush(), state, WHO, POPULATIONS)
        if u.indicator == "energy_consumed_per_inhabitant_kwh" and u.size == MONTH
    }
    march = int(H.replace(day=1, hour=0).timestamp())
    assert (closed[march].total, closed[march].final) == (40.0 / 79851, True)
    assert closed[max(closed)].total == 5.0 / 79851


def test_a_day_s_heating_degree_days_are_18_minus_its_mean_temperature() -> None:
    """Unified degree days, base 18 °C, from a station's readings of the day: 4, 6 and 11 °C
    make a mean of 7, so 11 DJU; a day at 20 °C on average gives 0, not -2."""
    state = WindowState(sizes=(DAY,), grace_seconds=0)
    cold = (("commune", "17300"), ("quantity", "temperature"), ("station", "meteo-17300-0001"))
    mild = (("commune", "17028"), ("quantity", "temperature"), ("station", "temp-17028-0001"))
    state.add_all(
        [
            reading("t1", 0, ("environment_value", cold, 4.0)),
            reading("t2", 60, ("environment_value", cold, 6.0)),
            reading("t3", 120, ("environment_value", cold, 11.0)),
            reading("m1", 0, ("environment_value", mild, 19.0)),
            reading("m2", 60, ("environment_value", mild, 21.0)),
        ]
    )
    dju = {dict(d)["station"]: u for d, u in derived_of(state, "heating_degree_days", DAY).items()}
    assert dju["meteo-17300-0001"].total == 18.0 - (4.0 + 6.0 + 11.0) / 3  # 11.0
    assert dju["temp-17028-0001"].total == 0.0
    assert dict(dju["meteo-17300-0001"].dimensions) == {"commune": "17300", "station": "meteo-17300-0001"}
    assert not derived_of(state, "who_exceedance", DAY)  # a temperature has no WHO guideline
