"""Load the reference data files, and reload them when they change, without a restart."""

from __future__ import annotations

import csv
import logging
import os
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from reference.bounds import PlausibilityBounds

log = logging.getLogger(__name__)

DEFAULT_DIR = Path(__file__).resolve().parent / "data"
FILES = ("communes.csv", "emission_factors.csv", "devices.csv", "plausibility.toml")
# Without them, no WHO exceedance is derived, no territory trajectory computed.
OPTIONAL_FILES = ("who_air_quality_2021.csv", "trajectory.csv")


@dataclass(frozen=True)
class Commune:
    insee: str
    name: str
    population: int


@dataclass(frozen=True)
class EmissionFactor:
    factor_id: str
    category: str
    key: str
    unit: str
    value: float
    valid_from_year: int
    valid_to_year: int
    label: str
    source: str


@dataclass(frozen=True)
class Device:
    device_id: str
    family: str
    device_type: str
    commune: str
    sector: str | None
    producer_id: str


@dataclass(frozen=True)
class ReferenceData:
    """One consistent version of all reference data (replaced whole on reload)."""

    communes: dict[str, Commune]
    factors: tuple[EmissionFactor, ...]
    devices: dict[str, Device]
    bounds: PlausibilityBounds
    loaded_from: Path
    # WHO 2021 24-hour guideline per pollutant (who_air_quality_2021.csv), in its unit.
    who_daily_guidelines: dict[str, float] = field(default_factory=dict)
    # Lookups run once per reading: memoised per version of the data (a reload makes a new object).
    _factor_cache: dict[tuple[str, str, int], EmissionFactor | None] = field(
        default_factory=dict, compare=False, repr=False
    )

    def factor(self, category: str, key: str, year: int) -> EmissionFactor | None:
        """The factor for ``key`` valid in ``year``, or None if the reference data has none."""
        cache_key = (category, key, year)
        if cache_key in self._factor_cache:
            return self._factor_cache[cache_key]
        found = None
        for f in self.factors:
            if f.category == category and f.key == key and f.valid_from_year <= year <= f.valid_to_year:
                found = f
                break
        self._factor_cache[cache_key] = found
        return found


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def load_reference(directory: Path = DEFAULT_DIR) -> ReferenceData:
    """Read every file; raise ValueError naming the file and row that is wrong."""
    try:
        communes = {
            r["code_insee"]: Commune(r["code_insee"], r["nom"], int(r["population"]))
            for r in _rows(directory / "communes.csv")
        }
        factors = tuple(
            EmissionFactor(
                factor_id=r["factor_id"],
                category=r["category"],
                key=r["key"],
                unit=r["unit"],
                value=float(r["value"]),
                valid_from_year=int(r["valid_from_year"]),
                valid_to_year=int(r["valid_to_year"]),
                label=r["label"],
                source=r["source"],
            )
            for r in _rows(directory / "emission_factors.csv")
        )
        devices = {
            r["device_id"]: Device(
                r["device_id"],
                r["family"],
                r["device_type"],
                r["commune"],
                r["sector"] or None,
                r["producer_id"],
            )
            for r in _rows(directory / "devices.csv")
        }
        bounds = PlausibilityBounds.model_validate(
            tomllib.loads((directory / "plausibility.toml").read_text(encoding="utf-8"))
        )
        who_file = directory / OPTIONAL_FILES[0]
        who = (
            {r["quantity"]: float(r["value"]) for r in _rows(who_file) if r["averaging"] == "24h"}
            if who_file.exists()
            else {}
        )
    except (KeyError, ValueError, OSError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"reference data in {directory} is invalid: {exc}") from exc
    unknown = sorted({d.commune for d in devices.values()} - set(communes))
    if unknown:
        raise ValueError(f"devices.csv names communes outside the territory: {unknown}")
    return ReferenceData(communes, factors, devices, bounds, directory, who)


class ReferenceStore:
    """The current reference data, reloaded when a file changes (checked every ``interval`` s).

    A reload that fails keeps the previous version and logs why: a typo in a file must not
    stop ingestion.
    """

    def __init__(self, directory: Path = DEFAULT_DIR, interval: float = 5.0) -> None:
        self.directory = directory
        self.interval = interval
        self._data = load_reference(directory)
        self._stamp = self._mtimes()
        self._checked = time.monotonic()
        self.reloads = 0

    def _mtimes(self) -> tuple[int, ...]:
        return tuple(os.stat(self.directory / name).st_mtime_ns for name in FILES)

    def current(self) -> ReferenceData:
        now = time.monotonic()
        if now - self._checked >= self.interval:
            self._checked = now
            self.reload_if_changed()
        return self._data

    def reload_if_changed(self) -> bool:
        stamp = self._mtimes()
        if stamp == self._stamp:
            return False
        self._stamp = stamp
        try:
            self._data = load_reference(self.directory)
        except ValueError as exc:
            log.error("keeping the previous reference data: %s", exc)
            return False
        self.reloads += 1
        log.info("reference data reloaded from %s", self.directory)
        return True
