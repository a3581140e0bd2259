"""Load the reference data files, and reload them when they change, without a restart."""

from __future__ import annotations

import csv
import io
import logging
import os
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TypeVar

from reference.bounds import PlausibilityBounds

log = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT_DIR = Path(__file__).resolve().parent / "data"
FILES = ("communes.csv", "emission_factors.csv", "devices.csv", "plausibility.toml")
# Without them, no WHO exceedance is derived, no territory trajectory computed, no sink declared.
OPTIONAL_FILES = ("who_air_quality_2021.csv", "trajectory.csv", "sequestration.csv")
# The files a change of which makes the worker reload (trajectory.csv is the sink's).
WATCHED_FILES = (*FILES, OPTIONAL_FILES[0])


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
    # A charging point behind a site's own meter (``metered_site``: that meter's device id):
    # the site's meter counts its electricity, and its emissions, already.
    metered_site: str | None = None


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

    @cached_property
    def populations(self) -> dict[str, int]:
        """Inhabitants by commune (INSEE code): what the figures per inhabitant divide by."""
        return {insee: commune.population for insee, commune in self.communes.items()}

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


def _table(path: Path, build: Callable[[dict[str, str]], T]) -> list[T]:
    """Every row of the CSV file ``path``, built; ValueError naming the file and line that is wrong.

    A row with fewer or more fields than the header is refused, not read with blanks, and so
    is a file whose last line has no line end: both are what a file caught half-written
    looks like (cut inside a row's last field, the row alone would still look whole).
    """
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            text = _whole_text(handle.read())
            reader = csv.DictReader(io.StringIO(text, newline=""))
            if not reader.fieldnames:
                raise ValueError("the file is empty")
            built = []
            for row in reader:
                if None in row or None in row.values():
                    raise ValueError(
                        f"line {reader.line_num}: not as many fields as the header "
                        f"({len(reader.fieldnames)}): is the file being written?"
                    )
                try:
                    built.append(build(row))
                except KeyError as exc:
                    raise ValueError(f"no column {exc}") from exc
                except (ValueError, TypeError) as exc:
                    raise ValueError(f"line {reader.line_num}: {exc}") from exc
    except (OSError, ValueError, csv.Error) as exc:
        raise ValueError(f"{path}: {exc}") from exc
    return built


def _commune(r: dict[str, str]) -> Commune:
    return Commune(r["code_insee"], r["nom"], int(r["population"]))


def _factor(r: dict[str, str]) -> EmissionFactor:
    return EmissionFactor(
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


def _device(r: dict[str, str]) -> Device:
    return Device(
        r["device_id"], r["family"], r["device_type"], r["commune"], r["sector"] or None, r["producer_id"],
        r.get("metered_site") or None,  # an optional last column: rows may stop before it
    )  # fmt: skip


def _whole_text(text: str) -> str:
    """``text``, unless it stops in the middle of a line: ValueError. Every writer of these
    files ends them with a line end; a file that has none at its end is still being written
    (cut there, ``max_past_days = 400`` reads as 40). Deploy by writing elsewhere and renaming."""
    if text and not text.endswith(("\n", "\r")):
        raise ValueError(
            "the last line has no line end: is the file being written? (write it elsewhere "
            "and rename it into place)"
        )
    return text


def _bounds(path: Path) -> PlausibilityBounds:
    try:
        return PlausibilityBounds.model_validate(tomllib.loads(_whole_text(path.read_text(encoding="utf-8"))))
    except (OSError, ValueError) as exc:  # TOMLDecodeError and pydantic's errors are ValueErrors
        raise ValueError(f"{path}: {exc}") from exc


def _who_guideline(r: dict[str, str]) -> tuple[str, float] | None:
    return (r["quantity"], float(r["value"])) if r["averaging"] == "24h" else None


def load_reference(directory: Path = DEFAULT_DIR) -> ReferenceData:
    """Read every file; raise ValueError naming the file (and line) that is wrong."""
    communes = {c.insee: c for c in _table(directory / "communes.csv", _commune)}
    factors = tuple(_table(directory / "emission_factors.csv", _factor))
    devices = {d.device_id: d for d in _table(directory / "devices.csv", _device)}
    bounds = _bounds(directory / "plausibility.toml")
    who_file = directory / OPTIONAL_FILES[0]
    who = dict(g for g in _table(who_file, _who_guideline) if g) if who_file.exists() else {}
    unknown = sorted({d.commune for d in devices.values()} - set(communes))
    if unknown:
        raise ValueError(f"{directory / 'devices.csv'} names communes outside the territory: {unknown}")
    behind_nothing = sorted(
        f"{d.device_id} (metered_site {d.metered_site})"
        for d in devices.values()
        if d.metered_site and getattr(devices.get(d.metered_site), "family", None) != "energy"
    )
    if behind_nothing:
        raise ValueError(
            f"{directory / 'devices.csv'}: a metered_site must name a registered energy meter: "
            f"{behind_nothing}"
        )
    return ReferenceData(communes, factors, devices, bounds, directory, who)


class ReferenceStore:
    """The current reference data, reloaded when a file changes (checked every ``interval`` s).

    Only the first load, at start-up, may fail. A reload that fails (a file missing for a
    moment during a deploy, half-written, unparsable) keeps serving the last good version:
    ``current()`` never raises, because it runs inside the agents and the flush timer. The
    failure is logged once while it lasts, the load retried at every check, and the
    recovery logged.
    """

    def __init__(self, directory: Path = DEFAULT_DIR, interval: float = 5.0) -> None:
        self.directory = directory
        self.interval = interval
        # Stamped before reading: a file changed during the load is reloaded at the next check.
        self._stamp = self._mtimes()
        try:
            self._data = load_reference(directory)
        except ValueError as exc:
            raise ValueError(f"cannot start without reference data: {exc}") from exc
        self._checked = time.monotonic()
        self._failure: str | None = None  # what the last reload attempt said, while it fails
        self.reloads = 0

    def _mtimes(self) -> tuple[int | None, ...]:
        """Each watched file's modification time; None for a file that cannot be read."""
        stamps: list[int | None] = []
        for name in WATCHED_FILES:
            try:
                stamps.append(os.stat(self.directory / name).st_mtime_ns)
            except OSError:
                stamps.append(None)
        return tuple(stamps)

    def current(self) -> ReferenceData:
        """The last good version of the reference data; never raises."""
        now = time.monotonic()
        if now - self._checked >= self.interval:
            self._checked = now
            self.reload_if_changed()
        return self._data

    def reload_if_changed(self) -> bool:
        """Reload if a file changed since the version served; True when a new version is served."""
        stamp = self._mtimes()
        if stamp == self._stamp:
            if self._failure is not None:  # put back exactly as it was: the version served
                log.info("reference data in %s is back as it was; no reload needed", self.directory)
                self._failure = None
            return False
        try:
            data = load_reference(self.directory)
        except Exception as exc:  # whatever it is, ingestion goes on with the last good version
            failure = f"{type(exc).__name__}: {exc}"
            if failure != self._failure:
                log.warning(
                    "reference data could not be reloaded (%s); still serving the version loaded "
                    "before, and retrying every %g s until the files are valid again",
                    failure, self.interval,
                )  # fmt: skip
                self._failure = failure
            return False
        self._data = data
        self._stamp = stamp
        self.reloads += 1
        if self._failure is not None:
            log.info("reference data in %s is valid again: reloaded", self.directory)
            self._failure = None
        else:
            log.info("reference data reloaded from %s", self.directory)
        return True
