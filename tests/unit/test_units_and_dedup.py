"""Unit conversion to canonical kWh, and the bounded memory of recent event ids."""

import pytest

from schemas.units import ENERGY_TO_KWH, EnergyUnit, to_kwh
from streams.validation.deduplication import RecentEventIds


@pytest.mark.parametrize(
    ("quantity", "unit", "kwh"),
    [
        (1500, EnergyUnit.WH, 1.5),
        (2, EnergyUnit.MWH, 2000),
        (3.6, EnergyUnit.GJ, 1000),
        (1, EnergyUnit.KWH, 1),
    ],
)
def test_energy_units_convert_to_kwh(quantity: float, unit: EnergyUnit, kwh: float) -> None:
    assert to_kwh(quantity, unit) == pytest.approx(kwh)


def test_every_conversion_cites_its_source() -> None:
    assert all(conversion.source for conversion in ENERGY_TO_KWH.values())


def test_duplicate_within_horizon_is_detected_per_producer() -> None:
    recent = RecentEventIds(horizon=60)
    assert not recent.seen_before("enedis", "e1", now=0)
    assert recent.seen_before("enedis", "e1", now=30)
    assert not recent.seen_before("grdf", "e1", now=30)


def test_duplicate_after_horizon_passes() -> None:
    recent = RecentEventIds(horizon=60)
    recent.seen_before("enedis", "e1", now=0)
    assert not recent.seen_before("enedis", "e1", now=61)


def test_memory_is_bounded() -> None:
    recent = RecentEventIds(horizon=3600, max_size=100)
    for k in range(1000):
        recent.seen_before("p", str(k), now=k / 1000)
    assert len(recent) == 100
