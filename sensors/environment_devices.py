"""Simulated environment sensors: air-quality stations, weather stations, indoor CO2.

One reading carries one quantity (as the contract says), so a station cycles through its
quantities, one per report. NO2 follows the road traffic, PM the traffic and wood heating,
ozone the sun; indoor CO2 follows the occupancy of public buildings.
"""

from __future__ import annotations

import random
from abc import abstractmethod
from typing import Any

from schemas.environment import UNIT_OF, EnvQuantity
from sensors.load_shapes import (
    NO2_DELAY_S,
    LocalClock,
    heating_need,
    occupancy,
    outdoor_temperature,
    sun_height,
    traffic,
    traffic_anomaly,
)
from sensors.simulated_device import SimulatedDevice


class _CyclingSensor(SimulatedDevice):
    quantities: tuple[EnvQuantity, ...] = ()

    def setup(self, rng: random.Random) -> None:
        self.turn = rng.randrange(len(self.quantities))
        self.exposure = rng.uniform(0.7, 1.4)  # a kerbside station sees more than a park one

    @abstractmethod
    def value(self, quantity: EnvQuantity, t: float, clock: LocalClock, rng: random.Random) -> float:
        """The measured value of ``quantity`` at true time ``t``: the sensor kind's model."""

    def fields(self, t: float, device_t: float, clock: LocalClock, rng: random.Random) -> dict[str, Any]:
        quantity = self.quantities[self.turn]
        self.turn = (self.turn + 1) % len(self.quantities)
        return {
            "quantity": quantity.value,
            "value": round(self.value(quantity, t, clock, rng), 1),
            "unit": UNIT_OF[quantity],
        }


class AirQualityStation(_CyclingSensor):
    quantities = (EnvQuantity.NO2, EnvQuantity.PM10, EnvQuantity.PM25, EnvQuantity.O3)

    def value(self, quantity: EnvQuantity, t: float, clock: LocalClock, rng: random.Random) -> float:
        road = traffic(clock) * (1.0 + traffic_anomaly(self.spec.commune, t - NO2_DELAY_S)) * self.exposure
        if quantity is EnvQuantity.NO2:
            return max(0.0, 6.0 + 42.0 * road + rng.gauss(0, 3))
        pm10 = 9.0 + 9.0 * road + 14.0 * heating_need(outdoor_temperature(clock)) + rng.gauss(0, 2)
        if quantity is EnvQuantity.PM10:
            return max(0.0, pm10)
        if quantity is EnvQuantity.PM25:
            return max(0.0, 0.6 * pm10)
        return max(0.0, 35.0 + 70.0 * max(0.0, sun_height(t)) - 20.0 * road + rng.gauss(0, 4))


class WeatherStation(_CyclingSensor):
    quantities = (EnvQuantity.TEMPERATURE, EnvQuantity.RELATIVE_HUMIDITY)

    def setup(self, rng: random.Random) -> None:
        super().setup(rng)
        self.offset = rng.uniform(-0.8, 0.8)  # inland communes are a little colder at night

    def value(self, quantity: EnvQuantity, t: float, clock: LocalClock, rng: random.Random) -> float:
        temperature = outdoor_temperature(clock) + self.offset + rng.gauss(0, 0.3)
        if quantity is EnvQuantity.TEMPERATURE:
            return temperature
        return min(100.0, max(25.0, 88.0 - 2.2 * (temperature - 8.0) + rng.gauss(0, 3)))


class IndoorCo2Sensor(_CyclingSensor):
    quantities = (EnvQuantity.CO2_INDOOR,)

    def value(self, quantity: EnvQuantity, t: float, clock: LocalClock, rng: random.Random) -> float:
        return max(400.0, 420.0 + 950.0 * self.exposure * occupancy(clock, "public") + rng.gauss(0, 25))
