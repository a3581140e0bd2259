"""The road the territory steers by: gross emissions to -30 % in 2030 and ÷4 in 2040, net
emissions (gross minus what its carbon sinks absorb) to zero in 2040.

Reference data, each row with its source (reference/SOURCES.md):
- ``trajectory.csv``: waypoints ``year, measure (gross | net), target_kgco2e``; each path is
  linear between its waypoints and flat before the first and after the last;
- ``sequestration.csv``: what the territory's sinks absorb, declared by year (an inventory, a
  cooperative's certified removals); a year without a row takes the latest year declared
  before it (0 before the first): sequestration is declared, never measured here.
Pure: the rollup (sinks/territory_rollup.py) asks it for a year's figures.
"""

from __future__ import annotations

import csv
import itertools
import logging
from dataclasses import dataclass
from pathlib import Path

MEASURES = ("gross", "net")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TargetPath:
    """Annual emissions (kgCO2e) by year, linear between waypoints, flat beyond them."""

    waypoints: tuple[tuple[int, float], ...]  # sorted by year

    def target(self, year: int) -> float:
        points = self.waypoints
        if year <= points[0][0]:
            return points[0][1]
        for (y0, v0), (y1, v1) in itertools.pairwise(points):
            if year <= y1:
                return v0 + (v1 - v0) * (year - y0) / (y1 - y0)
        return points[-1][1]


@dataclass(frozen=True)
class Trajectory:
    gross: TargetPath
    net: TargetPath
    sequestration: tuple[tuple[int, float], ...] = ()  # (year, kgCO2e absorbed that year), sorted

    def annual_target(self, year: int) -> float:
        """The gross path's emissions for ``year``."""
        return self.gross.target(year)

    def sequestered(self, year: int) -> float:
        """What the sinks absorb in ``year``: the latest declaration up to that year, else 0."""
        found = 0.0
        for declared, kg in self.sequestration:
            if declared <= year:
                found = kg
        return found

    @classmethod
    def load(cls, folder: Path) -> Trajectory:
        """From ``trajectory.csv`` and, if present, ``sequestration.csv`` of a reference folder;
        ValueError names the file and what is wrong."""
        paths: dict[str, list[tuple[int, float]]] = {m: [] for m in MEASURES}
        for line, row in _rows(folder / "trajectory.csv", ("year", "measure", "target_kgco2e")):
            if row["measure"] not in MEASURES:
                raise ValueError(
                    f"{folder / 'trajectory.csv'} line {line}: measure must be one of {MEASURES}"
                )
            paths[row["measure"]].append((int(row["year"]), float(row["target_kgco2e"])))
        for measure, points in paths.items():
            if not points:
                raise ValueError(f"{folder / 'trajectory.csv'}: no waypoint of the {measure} path")
            if len({year for year, _ in points}) != len(points):
                raise ValueError(f"{folder / 'trajectory.csv'}: two {measure} waypoints for one year")
        sinks = folder / "sequestration.csv"
        declared = (
            sorted(
                (int(r["year"]), float(r["sequestered_kgco2e"]))
                for _, r in _rows(sinks, ("year", "sequestered_kgco2e"))
            )
            if sinks.exists()
            else []
        )
        return cls(
            TargetPath(tuple(sorted(paths["gross"]))),
            TargetPath(tuple(sorted(paths["net"]))),
            tuple(declared),
        )


def _rows(path: Path, columns: tuple[str, ...]) -> list[tuple[int, dict[str, str]]]:
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in columns if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: no column {missing} (it has {reader.fieldnames})")
        rows = []
        for row in reader:
            try:
                int(row["year"]), float(row[columns[-1]])
            except (TypeError, ValueError):
                raise ValueError(f"{path} line {reader.line_num}: {row} is not a year and a number") from None
            rows.append((reader.line_num, row))
        return rows


def trajectory_in(folder: Path) -> Trajectory | None:
    """The trajectory of a reference folder, or None (said in the log) when it has none: the
    territory's emissions are then summed without a path to compare them with."""
    if not (folder / "trajectory.csv").exists():
        log.warning("no %s: the territory's trajectory is not computed", folder / "trajectory.csv")
        return None
    return Trajectory.load(folder)
