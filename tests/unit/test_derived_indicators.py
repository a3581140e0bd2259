"""Derived indicators from one partition's window sums, checked against hand arithmetic."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

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
