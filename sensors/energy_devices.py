"""Simulated energy meters: electricity by sector, gas, heat network, solar PV inverters.

Loads follow ``load_shapes``: occupancy by sector (daily and weekly), longer lighting in
winter, and a heating share that follows the outdoor temperature. A quarter of electricity
meters and every gas meter report a cumulative index; the others report intervals.
Powers stay within the plausibility bounds (36 kW for a home, reference/data/plausibility.toml).
"""

from __future__ import annotations

import random
from abc import abstractmethod
from typing import Any, ClassVar

from sensors.load_shapes import (
    LocalClock,
    heating_need,
    local_clock,
    occupancy,
    outdoor_temperature,
    sun_height,
)
from sensors.simulated_device import SimulatedDevice, iso_utc

# Mean electric power (kW) of a typical site per sector, before shapes.
BASE_KW = {
    "residential": 0.55,
    "tertiary": 12.0,
    "public": 8.0,
    "industry": 150.0,
    "agriculture": 6.0,
}
RESIDENTIAL_MAX_KW = 30.0  # below the 36 kVA category bound
GAS_KWH_PER_M3 = 11.0  # the conversion schemas/units.py applies to m3


class _Meter(SimulatedDevice):
    carrier: ClassVar[str]

    def setup(self, rng: random.Random) -> None:
        self.size = rng.uniform(0.6, 1.6)
        self.index = 0.0
        self.unit = "kWh"

    @abstractmethod
    def power_kw(self, clock: LocalClock, rng: random.Random) -> float:
        """Mean power drawn (or produced) now, in kW: the meter kind's load shape."""

    def fields(self, t: float, device_t: float, clock: LocalClock, rng: random.Random) -> dict[str, Any]:
        # The energy of the interval that ends now, at the power of its middle: at the power of
        # its end, an hourly meter's consumption led the weather by half an hour or more, and a
        # causal analysis saw heating drive the cold.
        middle = local_clock(t - self.interval_s / 2)
        kwh = max(0.0, self.power_kw(middle, rng)) * self.interval_s / 3600
        out: dict[str, Any] = {"sector": self.spec.sector, "carrier": self.carrier}
        if self.reports_index:
            self.index += kwh / GAS_KWH_PER_M3 if self.unit == "m3" else kwh
            out.update(quantity=round(self.index, 3), unit=self.unit, kind="index")
        else:
            quantity = kwh * 1000 if self.unit == "Wh" else kwh
            out.update(
                quantity=round(quantity, 4),
                unit=self.unit,
                kind="interval",
                interval_start=iso_utc(device_t - self.interval_s),
            )
        return out

    def reset_index(self) -> None:
        self.index = 0.0


class ElectricityMeter(_Meter):
    carrier = "electricity"

    def setup(self, rng: random.Random) -> None:
        super().setup(rng)
        self.reports_index = rng.random() < 0.25
        self.index = rng.uniform(1_000, 60_000) if self.reports_index else 0.0
        self.electric_heating = rng.random() < 0.35  # share of homes heated by electricity in France

    def power_kw(self, clock: LocalClock, rng: random.Random) -> float:
        sector = self.spec.sector
        winter_light = 1.0 + 0.2 * heating_need(outdoor_temperature(clock))
        kw = BASE_KW[sector] * self.size * (0.35 + occupancy(clock, sector)) * winter_light
        if self.electric_heating:
            kw += 6.0 * BASE_KW[sector] / 0.55 * self.size * heating_need(outdoor_temperature(clock)) / 4
        kw *= rng.uniform(0.8, 1.2)
        return min(kw, RESIDENTIAL_MAX_KW) if sector == "residential" else kw


class GasMeter(_Meter):
    carrier = "natural_gas"

    def setup(self, rng: random.Random) -> None:
        super().setup(rng)
        self.reports_index = True
        self.unit = "m3"
        self.index = rng.uniform(500, 40_000)
        self.design_kw = (9.0 if self.spec.sector == "residential" else 60.0) * self.size

    def power_kw(self, clock: LocalClock, rng: random.Random) -> float:
        # Hot water and cooking all year, heating when cold.
        need = 0.08 + heating_need(outdoor_temperature(clock)) * (0.6 + 0.6 * occupancy(clock, "residential"))
        return self.design_kw * need * rng.uniform(0.85, 1.15)


class HeatMeter(_Meter):
    carrier = "heat_network"

    def setup(self, rng: random.Random) -> None:
        super().setup(rng)
        self.design_kw = 250.0 * self.size

    def power_kw(self, clock: LocalClock, rng: random.Random) -> float:
        need = 0.1 + heating_need(outdoor_temperature(clock)) * occupancy(clock, self.spec.sector)
        return self.design_kw * need * rng.uniform(0.9, 1.1)


class PvInverter(_Meter):
    carrier = "solar_pv"

    def setup(self, rng: random.Random) -> None:
        super().setup(rng)
        self.unit = "Wh"
        self.peak_kw = rng.uniform(3, 9) if self.spec.sector == "residential" else rng.uniform(36, 250)
        self.clearness = rng.uniform(0.4, 1.0)
        self.sun = 0.0

    def power_kw(self, clock: LocalClock, rng: random.Random) -> float:
        # The weather drifts slowly: clearness is a bounded random walk shared by the readings.
        self.clearness = min(1.0, max(0.15, self.clearness + rng.uniform(-0.05, 0.05)))
        return self.peak_kw * 0.85 * max(0.0, self.sun) * self.clearness

    def fields(self, t: float, device_t: float, clock: LocalClock, rng: random.Random) -> dict[str, Any]:
        # Mean sun height over the interval: the middle of it.
        self.sun = sun_height(t - self.interval_s / 2)
        return super().fields(t, device_t, clock, rng)
