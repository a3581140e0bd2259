"""The devices the recorded sources' collector files (tests/recorded_sources/collectors/) map to:
the shipped registry holds the car parks and the weather station, not the test stations."""

from __future__ import annotations

import shutil
from pathlib import Path

from reference.loader import DEFAULT_DIR, Device, load_reference

BIKES = [f"0{series}0{k}" for series in (2, 3) for k in range(1, 5)]  # gbfs-v2, gbfs-v3
TEST_DEVICES = (
    *(Device(f"bike-17300-{n}", "mobility", "bike_station", "17300", "transport", "yelo") for n in BIKES),
    Device("meteo-17300-0001", "environment", "weather_station", "17300", None, "meteo-france"),
    Device("aq-17300-0201", "environment", "air_quality_station", "17300", None, "atmo-na"),
    Device("aq-17028-0201", "environment", "air_quality_station", "17028", None, "atmo-na"),
)


def registry_with_test_devices() -> dict[str, Device]:
    """The shipped registry, plus the recorded sources' devices it does not hold."""
    devices = dict(load_reference(DEFAULT_DIR).devices)
    for device in TEST_DEVICES:
        devices.setdefault(device.device_id, device)
    return devices


def reference_with_test_devices(folder: Path) -> Path:
    """A copy of the shipped reference folder whose devices.csv holds the test devices too
    (for a worker and a collector started with ZC_REFERENCE_DIR)."""
    shutil.copytree(DEFAULT_DIR, folder)
    shipped = load_reference(DEFAULT_DIR).devices
    with (folder / "devices.csv").open("a", encoding="utf-8") as registry:
        for d in TEST_DEVICES:
            if d.device_id not in shipped:
                registry.write(
                    f"{d.device_id},{d.family},{d.device_type},{d.commune},{d.sector or ''},{d.producer_id}\n"
                )
    return folder
