"""A charging point behind a site's own meter is not counted twice (issue 22, perimeter): the
registry names the meter (``metered_site``), and its sessions give their own kWh figure, not
EV-charging emissions, which the site's meter already counts as its electricity."""

from __future__ import annotations

import csv
import dataclasses
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from reference.device_registry import add_device
from reference.loader import DEFAULT_DIR, Device, load_reference
from schemas.mobility import MOBILITY_ADAPTER
from sensors.fleet import DEFAULT_MIX, build_fleet
from sensors.fleet_registry import write_reference_dir
from streams.indicators.enrichment import Contribution, enrich

T = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
REF = load_reference()
POINT = "evse-17200-0001"  # the shipped registry's charging point, on its own connection


def _session(device: str = POINT, kwh: float = 12.0) -> object:
    return MOBILITY_ADAPTER.validate_python(
        {
            "event_id": "c1", "producer_id": "cda-lr", "event_time": T.isoformat(), "device_id": device,
            "commune": "17200", "kind": "ev_charging_session",
            "started_at": (T - timedelta(hours=1)).isoformat(), "energy_kwh": kwh,
        },
        strict=False,
    )  # fmt: skip


def _measures(reference: object) -> dict[str, float]:
    out = enrich(_session(), reference)  # type: ignore[arg-type]
    assert isinstance(out, Contribution)
    return {m.indicator: m.value for m in out.measures}


def test_a_public_point_counts_its_kwh_and_their_emissions() -> None:
    measures = _measures(REF)
    assert set(measures) == {"ev_charging_kwh", "ev_charging_emissions_kgco2e"}
    assert measures["ev_charging_kwh"] == pytest.approx(12.0) and measures["ev_charging_emissions_kgco2e"] > 0


def test_a_point_behind_a_site_meter_gives_its_kwh_apart_and_no_emissions() -> None:
    behind = dataclasses.replace(REF.devices[POINT], metered_site="elec-17300-0002")
    reference = dataclasses.replace(REF, devices={**REF.devices, POINT: behind})
    assert _measures(reference) == pytest.approx({"ev_charging_behind_meter_kwh": 12.0})


def _copy(tmp_path: Path) -> Path:
    folder = tmp_path / "reference"
    shutil.copytree(DEFAULT_DIR, folder, ignore=shutil.ignore_patterns("__pycache__"))
    return folder


def _point(device_id: str, metered_site: str | None) -> Device:
    return Device(device_id, "mobility", "charging_point", "17300", "tertiary", "cda-lr", metered_site)


def test_the_first_point_behind_a_meter_gives_every_row_the_column_and_later_rows_fill_it(
    tmp_path: Path,
) -> None:
    folder = _copy(tmp_path)
    before = load_reference(folder).devices
    add_device(folder, _point("evse-17300-0100", "elec-17300-0002"))
    add_device(folder, _point("evse-17300-0101", None))
    with (folder / "devices.csv").open(newline="", encoding="utf-8") as rows:
        table = list(csv.reader(rows))
    assert table[0][-1] == "metered_site" and {len(row) for row in table} == {len(table[0])}
    devices = load_reference(folder).devices
    assert {k: v for k, v in devices.items() if k in before} == before  # the others unchanged
    assert devices["evse-17300-0100"].metered_site == "elec-17300-0002"
    assert devices["evse-17300-0101"].metered_site is None
    # A simulated fleet appended to such a registry fills the column too.
    fleet = build_fleet(30, list(load_reference(folder).communes.values()), dict(DEFAULT_MIX))
    with_fleet = load_reference(write_reference_dir(fleet, folder, tmp_path / "with-fleet")).devices
    assert len(with_fleet) == len(devices) + 30


@pytest.mark.parametrize("site", ["elec-17300-9999", POINT])  # not registered; not an energy meter
def test_a_metered_site_must_be_a_registered_energy_meter(tmp_path: Path, site: str) -> None:
    folder = _copy(tmp_path)
    with pytest.raises(ValueError, match="not a registered energy meter"):
        add_device(folder, _point("evse-17300-0102", site))
    # Written by hand: the loader refuses it too, naming the row.
    path = folder / "devices.csv"
    with path.open(newline="", encoding="utf-8") as rows:
        header, *table = list(csv.reader(rows))
    table = [[*row, ""] for row in table] + [
        ["evse-17300-0103", "mobility", "charging_point", "17300", "tertiary", "cda-lr", site]
    ]
    with path.open("w", newline="", encoding="utf-8") as rows:
        csv.writer(rows, lineterminator="\n").writerows([[*header, "metered_site"], *table])
    with pytest.raises(ValueError, match=f"evse-17300-0103 \\(metered_site {site}\\)"):
        load_reference(folder)


def test_a_column_of_the_operator_s_own_is_kept_and_filled_empty_for_new_rows(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    path = folder / "devices.csv"
    with path.open(newline="", encoding="utf-8") as rows:
        header, *table = list(csv.reader(rows))
    with path.open("w", newline="", encoding="utf-8") as rows:
        csv.writer(rows, lineterminator="\n").writerows([[*header, "note"], *([*r, "kept"] for r in table)])
    add_device(folder, _point("evse-17300-0104", None))
    add_device(folder, _point("evse-17300-0105", "elec-17300-0002"))
    with path.open(newline="", encoding="utf-8") as rows:
        header, *written = list(csv.reader(rows))
    assert header[-2:] == ["note", "metered_site"]
    assert [r[-2:] for r in written[: len(table)]] == [["kept", ""]] * len(table)
    assert written[-2][-2:] == ["", ""] and written[-1][-2:] == ["", "elec-17300-0002"]
    assert load_reference(folder).devices["evse-17300-0105"].metered_site == "elec-17300-0002"
