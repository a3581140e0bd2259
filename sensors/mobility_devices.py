"""Simulated mobility devices: bike-share stations and bikes, buses and sea buses, traffic
counters, car parks, charging points and shared cars.

Flows follow the commuting peaks (``load_shapes.traffic``) and, for the sea bus, car parks
and bikes, the summer visitors (``load_shapes.tourism``). Every count stays within its
capacity and the plausibility bounds (trips, charging energy, passengers per event).
"""

from __future__ import annotations

import random
from typing import Any

from sensors.load_shapes import LocalClock, occupancy, tourism, traffic, traffic_anomaly
from sensors.simulated_device import SimulatedDevice, iso_utc


class BikeStation(SimulatedDevice):
    def setup(self, rng: random.Random) -> None:
        self.slots = rng.randrange(10, 31)
        self.fill = rng.uniform(0.3, 0.7)

    def fields(self, t: float, device_t: float, clock: LocalClock, rng: random.Random) -> dict[str, Any]:
        # Bikes leave residential stations in the morning peak and come back in the evening.
        pull = 0.5 - self.fill + 0.25 * (traffic(clock) - 0.5) * (1 if clock.hour > 13 else -1)
        self.fill = min(1.0, max(0.0, self.fill + 0.2 * pull + rng.uniform(-0.08, 0.08)))
        available = round(self.fill * self.slots)
        out_of_order = rng.randrange(0, 2)
        return {
            "kind": "bike_station_status",
            "available_bike_number": available,
            "free_slot_number": max(0, self.slots - available - out_of_order),
            "total_slot_number": self.slots,
        }


class Bike(SimulatedDevice):
    def fields(self, t: float, device_t: float, clock: LocalClock, rng: random.Random) -> dict[str, Any]:
        minutes = rng.uniform(4, 14) * (1 + tourism(clock))
        return {
            "kind": "bike_trip",
            "started_at": iso_utc(device_t - round(minutes * 60)),
            "distance_km": round(minutes / 60 * rng.uniform(10, 17), 2),
            "electric": rng.random() < 0.4,
        }


class Bus(SimulatedDevice):
    def setup(self, rng: random.Random) -> None:
        self.line = f"illico-{rng.randrange(1, 6)}" if rng.random() < 0.5 else f"ligne-{rng.randrange(1, 22)}"
        self.demand = rng.uniform(30, 90)

    def fields(self, t: float, device_t: float, clock: LocalClock, rng: random.Random) -> dict[str, Any]:
        passengers = self.demand * (0.05 + traffic(clock)) * rng.uniform(0.8, 1.2)
        return {
            "kind": "transit_validation",
            "mode": "bus",
            "line": self.line,
            "passengers": round(passengers),
            "interval_start": iso_utc(device_t - self.interval_s),
        }


class SeaBus(SimulatedDevice):
    def fields(self, t: float, device_t: float, clock: LocalClock, rng: random.Random) -> dict[str, Any]:
        passengers = min(
            75, round(75 * tourism(clock) * (0.2 + 0.8 * traffic(clock)) * rng.uniform(0.8, 1.1))
        )
        return {
            "kind": "transit_trip",
            "mode": "sea_bus",
            "line": "bus-de-mer",
            "started_at": iso_utc(device_t - 20 * 60),
            "distance_km": 3.2,
            "passengers": passengers,
            "energy_kwh": round(rng.uniform(35, 48), 1),
        }


class TrafficCounter(SimulatedDevice):
    def setup(self, rng: random.Random) -> None:
        self.capacity = rng.uniform(80, 400)  # vehicles per quarter hour at the evening peak
        self.lane = rng.randrange(1, 3)

    def fields(self, t: float, device_t: float, clock: LocalClock, rng: random.Random) -> dict[str, Any]:
        flow = traffic(clock) * (1.0 + traffic_anomaly(self.spec.commune, t))
        return {
            "kind": "traffic_count",
            "interval_start": iso_utc(device_t - self.interval_s),
            "intensity": round(self.capacity * flow * self.interval_s / 900 * rng.uniform(0.85, 1.15)),
            "average_vehicle_speed": round(max(8.0, 52.0 - 22.0 * flow + rng.gauss(0, 3)), 1),
            "lane_id": self.lane,
        }


class CarPark(SimulatedDevice):
    def setup(self, rng: random.Random) -> None:
        self.spots = rng.randrange(80, 650)

    def fields(self, t: float, device_t: float, clock: LocalClock, rng: random.Random) -> dict[str, Any]:
        busy = 0.12 + 0.75 * occupancy(clock, "tertiary") * (0.6 + 0.4 * tourism(clock))
        share = min(1.0, max(0.0, busy + rng.gauss(0, 0.03)))
        return {
            "kind": "parking_occupancy",
            "occupied_spot_number": round(share * self.spots),
            "total_spot_number": self.spots,
        }


class ChargingPoint(SimulatedDevice):
    def setup(self, rng: random.Random) -> None:
        self.power_kw = rng.choice((7.4, 11.0, 22.0, 50.0))

    def fields(self, t: float, device_t: float, clock: LocalClock, rng: random.Random) -> dict[str, Any]:
        hours = rng.uniform(0.3, 3.5)
        return {
            "kind": "ev_charging_session",
            "started_at": iso_utc(device_t - round(hours * 3600)),
            "energy_kwh": round(min(hours * self.power_kw * rng.uniform(0.5, 0.9), 95.0), 2),
        }


class CarsharingCar(SimulatedDevice):
    def setup(self, rng: random.Random) -> None:
        self.electric = rng.random() < 0.5

    def fields(self, t: float, device_t: float, clock: LocalClock, rng: random.Random) -> dict[str, Any]:
        minutes = rng.uniform(25, 180)
        return {
            "kind": "carsharing_trip",
            "started_at": iso_utc(device_t - round(minutes * 60)),
            "distance_km": round(minutes / 60 * rng.uniform(12, 35), 1),
            "electric": self.electric,
        }
