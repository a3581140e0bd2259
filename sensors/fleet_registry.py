"""The simulated fleet in the device registry, so validation accepts its readings.

Validation dead-letters a reading from a device the registry does not know
(``plausibility.unknown_device``). The shipped registry (reference/data/devices.csv) holds
the real sample devices only; ``write_reference_dir`` writes a copy of a reference folder
with the fleet appended, for a worker started with ``ZC_REFERENCE_DIR`` pointing at it
(``zerocarbon simulate --write-registry DIR``). A fleet's rows depend only on its size and
mix, never on the seed.
"""

from __future__ import annotations

import csv
import dataclasses
import shutil
from collections.abc import Sequence
from pathlib import Path

from reference.device_registry import registry_header, registry_row
from reference.loader import FILES, OPTIONAL_FILES, Device, ReferenceData, load_reference
from sensors.fleet import DeviceSpec


def registry_devices(fleet: Sequence[DeviceSpec]) -> list[Device]:
    """The registry entry of every simulated device."""
    return [
        Device(
            spec.device_id,
            spec.family,
            spec.kind.device_type,
            spec.commune,
            spec.sector or None,
            spec.kind.producer_id,
        )
        for spec in fleet
    ]


def with_fleet(reference: ReferenceData, fleet: Sequence[DeviceSpec]) -> ReferenceData:
    """``reference`` with the fleet added to its device registry (in memory)."""
    devices = {**reference.devices, **{d.device_id: d for d in registry_devices(fleet)}}
    return dataclasses.replace(reference, devices=devices, _factor_cache={})


def write_reference_dir(fleet: Sequence[DeviceSpec], source: Path, target: Path) -> Path:
    """Copy the reference folder ``source`` to ``target`` with the fleet appended to devices.csv."""
    target.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        shutil.copyfile(source / name, target / name)
    for name in OPTIONAL_FILES:
        if (source / name).exists():
            shutil.copyfile(source / name, target / name)
    known = set(load_reference(source).devices)
    header = registry_header((target / "devices.csv").read_text(encoding="utf-8"))
    with (target / "devices.csv").open("a", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        for d in registry_devices(fleet):
            if d.device_id not in known:
                writer.writerow(registry_row(d, header))
    load_reference(target)  # refuse to leave a folder the worker could not load
    return target
