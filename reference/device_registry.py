"""The device registry (``devices.csv`` of a reference folder): checking and adding a row.

`zerocarbon devices add` writes here (and creates the device's broker credential beside it).
The row is checked against the folder's communes and the contracts' vocabularies, and the
file replaced whole (written aside, then renamed): the worker, which reloads the folder when
a file changes, never reads it half-written.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence
from pathlib import Path

from reference.loader import DEFAULT_DIR, Device, load_reference

REGISTRY_FILE = "devices.csv"
COLUMNS = ("device_id", "family", "device_type", "commune", "sector", "producer_id")
# Optional: a registry without it has no charging point behind a site's meter.
METERED_SITE = "metered_site"


def registry_row(device: Device, header: Sequence[str]) -> list[str]:
    """``device``'s fields in the order of a registry file's ``header`` (a row has as many
    fields as its header: the loader refuses a shorter one as a file half-written)."""
    fields = {
        "device_id": device.device_id, "family": device.family, "device_type": device.device_type,
        "commune": device.commune, "sector": device.sector or "", "producer_id": device.producer_id,
        METERED_SITE: device.metered_site or "",
    }  # fmt: skip
    return [fields.get(column, "") for column in header]  # a column of the operator's own: empty


def registry_header(text: str) -> list[str]:
    """The columns of a registry file's ``text``."""
    return next(csv.reader(io.StringIO(text)), list(COLUMNS))


def row_problems(device: Device, communes: set[str]) -> list[str]:
    """What is wrong with a registry row as a file row (empty: nothing); the contracts'
    checks (family, sector, a device id fit for a topic) are the caller's."""
    problems = []
    if device.commune not in communes:
        problems.append(f"commune {device.commune!r} is not an INSEE code of the territory (communes.csv)")
    for name, value in (
        ("device id", device.device_id),
        ("family", device.family),
        ("type", device.device_type),
        ("sector", device.sector or "-"),
        ("producer", device.producer_id),
        ("metered site", device.metered_site or "-"),
    ):
        if not value.strip() or any(c in value for c in ",\r\n"):
            problems.append(f"the {name} {value!r} must be a non-empty word (no comma or line break)")
    return problems


def is_shipped(directory: Path) -> bool:
    """Whether ``directory`` is the reference data shipped in the package."""
    return directory.resolve() == DEFAULT_DIR.resolve()


def check_new_device(directory: Path, device: Device) -> None:
    """ValueError saying why ``device`` cannot be added to the registry of ``directory``."""
    if is_shipped(directory):
        raise ValueError(
            f"{directory} is the reference data shipped with the package, which an upgrade would "
            "replace: copy that folder elsewhere, point ZC_REFERENCE_DIR (reference_dir) at the copy "
            "for every process (worker, bridge, this command), then add devices there"
        )
    path = directory / REGISTRY_FILE
    if not path.exists():
        raise ValueError(
            f"no {REGISTRY_FILE} in {directory}: a reference folder holds communes.csv, devices.csv... "
            f"(copy {DEFAULT_DIR} there first)"
        )
    reference = load_reference(directory)
    if device.device_id in reference.devices:
        raise ValueError(f"device {device.device_id!r} is already in {path}")
    problems = row_problems(device, set(reference.communes))
    site = reference.devices.get(device.metered_site or "")
    if device.metered_site and (site is None or site.family != "energy"):
        problems.append(f"metered site {device.metered_site!r} is not a registered energy meter")
    if problems:
        raise ValueError(f"device {device.device_id!r} not added: " + "; ".join(problems))


def add_device(directory: Path, device: Device) -> None:
    """Add ``device``'s row to the registry of ``directory``; ValueError saying why not."""
    check_new_device(directory, device)
    path = directory / REGISTRY_FILE
    text = path.read_text(encoding="utf-8")
    header = registry_header(text)
    if device.metered_site and METERED_SITE not in header:
        # The first point behind a meter: every row gets the column, each row otherwise as it was.
        header, *rows = list(csv.reader(io.StringIO(text)))
        header.append(METERED_SITE)
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerows([header, *([*row, ""] for row in rows if row)])
        text = out.getvalue()
    elif text and not text.endswith("\n"):
        text += "\n"
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(registry_row(device, header))
    scratch = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    scratch.write_text(text + out.getvalue(), "utf-8")
    os.chmod(scratch, path.stat().st_mode & 0o7777)
    os.replace(scratch, path)
