"""Reference data: loaded with its sources, checked, and reloaded without a restart."""

import logging
import os
import shutil
from pathlib import Path

import pytest

from reference.loader import DEFAULT_DIR, ReferenceStore, load_reference


def test_shipped_reference_data_is_consistent() -> None:
    ref = load_reference()
    assert len(ref.communes) == 28
    assert ref.communes["17300"].name == "La Rochelle"
    assert all(d.commune in ref.communes for d in ref.devices.values())
    assert all(f.source for f in ref.factors)


def test_factor_lookup_respects_validity_years() -> None:
    ref = load_reference()
    factor = ref.factor("energy", "electricity", 2026)
    assert factor is not None and factor.unit == "kgCO2e/kWh"
    assert ref.factor("energy", "electricity", 1990) is None
    assert ref.factor("energy", "unobtainium", 2026) is None


def _copy(tmp_path: Path) -> Path:
    target = tmp_path / "ref"
    shutil.copytree(DEFAULT_DIR, target)
    return target


def _touch_later(path: Path) -> None:
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


def test_store_reloads_a_changed_registry(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    store = ReferenceStore(folder, interval=0)
    assert "new-meter-1" not in store.current().devices
    with (folder / "devices.csv").open("a") as handle:
        handle.write("new-meter-1,energy,electricity_meter,17028,residential,enedis\n")
    _touch_later(folder / "devices.csv")
    assert "new-meter-1" in store.current().devices
    assert store.reloads == 1


def test_store_keeps_the_previous_version_when_a_file_breaks(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    store = ReferenceStore(folder, interval=0)
    before = store.current()
    (folder / "plausibility.toml").write_text("version = \n")
    _touch_later(folder / "plausibility.toml")
    assert store.current() is before
    assert store.reloads == 0


def test_registry_naming_a_commune_outside_the_territory_is_refused(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    with (folder / "devices.csv").open("a") as handle:
        handle.write("paris-1,energy,electricity_meter,75056,residential,enedis\n")
    with pytest.raises(ValueError, match="75056"):
        load_reference(folder)


def test_a_file_missing_for_a_moment_keeps_the_last_version_served_and_its_return_is_reloaded(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 19: during a deploy a file vanishes for a moment; the agents and the flush timer
    call current() meanwhile and must go on with the last good version."""
    folder = _copy(tmp_path)
    store = ReferenceStore(folder, interval=0)
    before = store.current()
    devices = folder / "devices.csv"
    kept = devices.read_text(encoding="utf-8")
    devices.unlink()
    with caplog.at_level(logging.INFO, logger="reference.loader"):
        assert store.current() is before
        assert store.current() is before  # retried at each check, reported once
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1 and "devices.csv" in warnings[0], warnings
        assert "No such file" in warnings[0]
        devices.write_text(kept + "new-meter-2,energy,electricity_meter,17028,residential,enedis\n")
        _touch_later(devices)
        after = store.current()
    assert after is not before and "new-meter-2" in after.devices
    assert store.reloads == 1
    assert any("valid again" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    "name, broken",
    [
        (
            "communes.csv",
            'code_insee,nom,codes_postaux,population,siren_commune\n17010,"Ango',
        ),  # half-written
        ("devices.csv", ""),  # truncated before writing
        ("emission_factors.csv", "factor_id,category\nelec,energy\n"),  # a column gone
        ("plausibility.toml", "version = \n"),
        (
            "devices.csv",
            "device_id,family,device_type,commune,sector,producer_id\nx,energy,meter,17028,residential\n",
        ),
    ],
)
def test_a_half_written_or_broken_file_keeps_the_last_version_until_it_is_valid_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, name: str, broken: str
) -> None:
    folder = _copy(tmp_path)
    store = ReferenceStore(folder, interval=0)
    before = store.current()
    path = folder / name
    good = path.read_text(encoding="utf-8")
    path.write_text(broken, encoding="utf-8")
    _touch_later(path)
    with caplog.at_level(logging.WARNING, logger="reference.loader"):
        for _ in range(3):
            assert store.current() is before
    assert [name in r.getMessage() for r in caplog.records] == [True]
    path.write_text(good, encoding="utf-8")
    _touch_later(path)
    assert store.current() is not before
    assert store.reloads == 1


def test_the_first_load_fails_with_the_file_it_could_not_read(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    (folder / "communes.csv").unlink()
    with pytest.raises(ValueError, match=r"cannot start without reference data: .*communes\.csv"):
        ReferenceStore(folder)


def test_a_row_with_a_wrong_value_is_named_by_file_and_line(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    with (folder / "communes.csv").open("a", encoding="utf-8") as handle:
        handle.write("17999,Nowhere,17000,many,0\n")
    with pytest.raises(ValueError, match=r"communes\.csv: line 30: invalid literal for int"):
        load_reference(folder)
