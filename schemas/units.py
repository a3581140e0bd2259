"""Canonical units and the conversion factors into them, each with its source.

Energy is carried in kWh. For natural gas, kWh are PCS (gross calorific value), as billed
in France; for the other carriers, kWh as metered (PCI for fuels).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class EnergyUnit(StrEnum):
    WH = "Wh"
    KWH = "kWh"
    MWH = "MWh"
    GJ = "GJ"
    M3_GAS = "m3"
    LITRE_OIL = "L"


@dataclass(frozen=True)
class Conversion:
    to_kwh: float
    source: str


# kWh = 3.6 MJ exactly (SI definition), so 1 GJ = 277.777... kWh.
ENERGY_TO_KWH: dict[EnergyUnit, Conversion] = {
    EnergyUnit.WH: Conversion(1e-3, "SI prefixes"),
    EnergyUnit.KWH: Conversion(1.0, "canonical unit"),
    EnergyUnit.MWH: Conversion(1e3, "SI prefixes"),
    EnergyUnit.GJ: Conversion(1e9 / 3.6e6, "1 kWh = 3.6 MJ (SI)"),
    # GRDF bills m3 x a "coefficient de conversion" (kWh PCS per m3) that varies by zone and
    # month, typically between 10.5 and 11.5; 11.0 is the default, to be replaced by the
    # distributor's published coefficient in the reference data when known.
    EnergyUnit.M3_GAS: Conversion(11.0, "GRDF coefficient de conversion, typical value (PCS)"),
    # ADEME gives heating oil 3.25 kgCO2e/litre and 0.324 kgCO2e/kWh (see reference data):
    # their ratio, 10.03 kWh/litre, is the PCI this conversion uses.
    EnergyUnit.LITRE_OIL: Conversion(3.25 / 0.324, "ratio of ADEME's per-litre and per-kWh factors"),
}

UNITS_FOR_CARRIER: dict[str, frozenset[EnergyUnit]] = {
    "electricity": frozenset({EnergyUnit.WH, EnergyUnit.KWH, EnergyUnit.MWH}),
    "solar_pv": frozenset({EnergyUnit.WH, EnergyUnit.KWH, EnergyUnit.MWH}),
    "natural_gas": frozenset({EnergyUnit.KWH, EnergyUnit.MWH, EnergyUnit.M3_GAS}),
    "heat_network": frozenset({EnergyUnit.KWH, EnergyUnit.MWH, EnergyUnit.GJ}),
    "heating_oil": frozenset({EnergyUnit.KWH, EnergyUnit.MWH, EnergyUnit.LITRE_OIL}),
    "wood": frozenset({EnergyUnit.KWH, EnergyUnit.MWH}),
}


KWH_PER_UNIT: dict[EnergyUnit, float] = {unit: c.to_kwh for unit, c in ENERGY_TO_KWH.items()}
"""The factors alone, for the per-event path (one lookup instead of two)."""


def to_kwh(quantity: float, unit: EnergyUnit) -> float:
    """Convert an energy quantity to kWh (PCS for natural gas)."""
    return quantity * KWH_PER_UNIT[unit]
