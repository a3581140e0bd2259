"""A reference file caught half-written during a deploy is refused, even when the cut leaves
every row with all its fields: the worker goes on with the last good version (issue 19, found
by tests/faults/test_reference_file_flaps.py: a registry cut inside a row's last field loaded
with half its devices, and their readings were dead-lettered as unknown devices)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from reference.loader import DEFAULT_DIR, ReferenceStore, load_reference


def _copy(tmp_path: Path) -> Path:
    target = tmp_path / "ref"
    shutil.copytree(DEFAULT_DIR, target)
    return target


def _cut_inside_last_field(text: str, at: int) -> str:
    """``text`` cut two characters before the end of the line holding position ``at``."""
    end = text.index("\n", at)
    return text[: end - 2]


def test_a_registry_cut_inside_a_rows_last_field_is_refused(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    devices = folder / "devices.csv"
    text = devices.read_text(encoding="utf-8")
    devices.write_text(_cut_inside_last_field(text, len(text) // 2), encoding="utf-8")
    with pytest.raises(ValueError, match=r"devices\.csv: the last line has no line end"):
        load_reference(folder)


def test_plausibility_bounds_cut_inside_a_number_are_refused(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    bounds = folder / "plausibility.toml"
    text = bounds.read_text(encoding="utf-8")
    # The last bound cut short: 5000 passengers per event read as 50.
    assert text.endswith("max_passengers_per_event = 5000\n")
    bounds.write_text(text[:-3], encoding="utf-8")
    with pytest.raises(ValueError, match=r"plausibility\.toml: the last line has no line end"):
        load_reference(folder)


def test_the_store_keeps_every_device_while_the_registry_is_half_written(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    store = ReferenceStore(folder, interval=0)
    before = store.current()
    devices = folder / "devices.csv"
    text = devices.read_text(encoding="utf-8")
    devices.write_text(_cut_inside_last_field(text, len(text) // 2), encoding="utf-8")
    stat = devices.stat()
    os.utime(devices, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert store.current() is before
    assert len(store.current().devices) == len(before.devices)


def test_a_file_ending_with_its_line_end_loads(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    devices = folder / "devices.csv"
    devices.write_text(devices.read_text(encoding="utf-8").replace("\n", "\r\n"), encoding="utf-8")
    assert len(load_reference(folder).devices) == len(load_reference().devices)
