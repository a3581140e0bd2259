"""Reference data: loaded with its sources, checked, and reloaded without a restart."""

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
