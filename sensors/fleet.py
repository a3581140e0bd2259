"""The simulated territory's devices: which kinds, how many, in which commune, with which ids.

The layout depends only on the number of devices and the family mix (never on the seed),
so that one device registry (``sensors/fleet_registry.py``) serves every seed. Devices are
spread over the 28 communes in proportion to their population, and each commune gets the
same mix of kinds, within one device.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from reference.loader import Commune


@dataclass(frozen=True, slots=True)
class DeviceKind:
    """A kind of device: its registry type, family, id prefix, producer and reporting interval."""

    device_type: str
    family: str
    prefix: str
    producer_id: str
    interval_s: int
    share: float  # of its family's devices
    sectors: tuple[str, ...] = ("",)  # cycled over the kind's devices, in order


_ELECTRICITY_SECTORS = ("residential",) * 14 + ("tertiary",) * 3 + ("public", "industry", "agriculture")

KINDS: tuple[DeviceKind, ...] = (
    DeviceKind("electricity_meter", "energy", "elec", "enedis", 900, 0.55, _ELECTRICITY_SECTORS),
    DeviceKind("gas_meter", "energy", "gas", "grdf", 3600, 0.2, ("residential",) * 4 + ("tertiary",)),
    DeviceKind("heat_meter", "energy", "heat", "reseau-chaleur-lr", 3600, 0.05, ("public", "tertiary")),
    DeviceKind("pv_inverter", "energy", "pv", "enedis", 900, 0.2, ("residential",) * 5 + ("tertiary",)),
    DeviceKind("air_quality_station", "environment", "aq", "atmo-na", 300, 0.15),
    DeviceKind("weather_station", "environment", "temp", "meteo-lr", 600, 0.25),
    DeviceKind("indoor_co2_sensor", "environment", "co2", "ville-lr", 600, 0.6, ("public",)),
    DeviceKind("bike_station", "mobility", "bike", "yelo", 300, 0.2, ("transport",)),
    DeviceKind("bike", "mobility", "ebike", "yelo", 900, 0.15, ("transport",)),
    DeviceKind("bus", "mobility", "bus", "yelo", 900, 0.15, ("transport",)),
    DeviceKind("sea_bus", "mobility", "seabus", "yelo", 1800, 0.05, ("transport",)),
    DeviceKind("traffic_counter", "mobility", "traffic", "cda-lr", 900, 0.2, ("transport",)),
    DeviceKind("car_park", "mobility", "parking", "ville-lr", 300, 0.1, ("transport",)),
    DeviceKind("charging_point", "mobility", "evse", "cda-lr", 3600, 0.1, ("transport",)),
    DeviceKind("carsharing_car", "mobility", "carsharing", "yelo", 3600, 0.05, ("transport",)),
)
KIND_BY_TYPE = {kind.device_type: kind for kind in KINDS}
FAMILY_NAMES = ("energy", "environment", "mobility")
DEFAULT_MIX: dict[str, float] = {"energy": 0.55, "environment": 0.15, "mobility": 0.30}


@dataclass(frozen=True, slots=True)
class DeviceSpec:
    """One simulated device as the registry knows it."""

    device_id: str
    kind: DeviceKind
    commune: str
    sector: str  # "" when the kind has none

    @property
    def family(self) -> str:
        return self.kind.family


def parse_mix(text: str) -> dict[str, float]:
    """``"energy=0.6,environment=0.1,mobility=0.3"`` -> shares per family (normalised)."""
    mix: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = part.partition("=")
        if not sep or name.strip() not in FAMILY_NAMES:
            raise ValueError(f"mix entry {part!r}: write family=share with a family among {FAMILY_NAMES}")
        try:
            mix[name.strip()] = float(value)
        except ValueError:
            raise ValueError(f"mix entry {part!r}: the share must be a number") from None
    total = sum(mix.values())
    if total <= 0 or any(v < 0 for v in mix.values()):
        raise ValueError(f"mix {text!r}: shares must be non-negative and not all zero")
    return {name: share / total for name, share in mix.items()}


def apportion(total: int, weights: Sequence[float]) -> list[int]:
    """Split ``total`` into integers proportional to ``weights`` (largest remainder method).

    Each part is within one of its exact quota and the parts sum to ``total``.
    """
    weight_sum = sum(weights)
    quotas = [total * w / weight_sum for w in weights]
    parts = [int(q) for q in quotas]
    by_remainder = sorted(range(len(weights)), key=lambda i: (-(quotas[i] - parts[i]), i))
    for i in by_remainder[: total - sum(parts)]:
        parts[i] += 1
    return parts


def kind_counts(devices: int, mix: Mapping[str, float]) -> dict[DeviceKind, int]:
    """How many devices of each kind: the family mix, then each kind's share of its family."""
    families = [f for f in FAMILY_NAMES if mix.get(f, 0) > 0]
    per_family = dict(zip(families, apportion(devices, [mix[f] for f in families]), strict=True))
    counts: dict[DeviceKind, int] = {}
    for family in families:
        kinds = [k for k in KINDS if k.family == family]
        counts.update(zip(kinds, apportion(per_family[family], [k.share for k in kinds]), strict=True))
    return counts


def build_fleet(
    devices: int, communes: Sequence[Commune], mix: Mapping[str, float] = DEFAULT_MIX
) -> list[DeviceSpec]:
    """``devices`` devices over ``communes`` in proportion to population, kinds as in ``mix``."""
    if devices < 1:
        raise ValueError("the fleet needs at least one device")
    counts = kind_counts(devices, mix)
    kinds = [k for k in KINDS if counts.get(k)]
    ordered = sorted(communes, key=lambda c: c.insee)
    per_commune = apportion(devices, [c.population for c in ordered])
    # Controlled rounding: every (commune, kind) cell has a fair share; hand devices out one by
    # one to the cell furthest below its share while its commune and its kind have room left.
    # Both the commune totals and the kind totals come out exact, and each cell near its share.
    room_in_commune = list(per_commune)
    room_in_kind = [counts[k] for k in kinds]
    cells = [
        (-(per_commune[c] * counts[kind] / devices), c, k)
        for c in range(len(ordered))
        for k, kind in enumerate(kinds)
    ]
    heapq.heapify(cells)
    assigned: list[tuple[int, int]] = []
    while len(assigned) < devices:
        deficit, c, k = heapq.heappop(cells)
        if room_in_commune[c] and room_in_kind[k]:
            room_in_commune[c] -= 1
            room_in_kind[k] -= 1
            assigned.append((c, k))
            heapq.heappush(cells, (deficit + 1, c, k))
    seen = [0] * len(kinds)
    fleet = []
    for number, (c, k) in enumerate(sorted(assigned), start=1):
        kind, commune = kinds[k], ordered[c]
        sector = kind.sectors[seen[k] % len(kind.sectors)]
        seen[k] += 1
        fleet.append(
            DeviceSpec(f"sim-{kind.prefix}-{commune.insee}-{number:06d}", kind, commune.insee, sector)
        )
    return fleet
