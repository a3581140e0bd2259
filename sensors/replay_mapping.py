"""A replay mapping: how the rows of someone else's file become events of our contracts.

A small TOML file (examples in ``sensors/mappings/``, format in docs/devices.md) declares
which columns hold the device, the time and its time zone, the values and their units,
and which of our registered devices each source device becomes. Turning a row into an
event is a pure function; a row that cannot be turned (a missing value, an unknown device)
is skipped with its reason, counted, never silently dropped.
"""

from __future__ import annotations

import re
import tomllib
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from reference.loader import Device
from sensors.contract_names import DEVICE_FIELD, SCHEMA_NAME
from sensors.fleet import FAMILY_NAMES

MAPPINGS_DIR = Path(__file__).resolve().parent / "mappings"
# The excerpts the shipped mappings replay. They live in the package (package-data in
# pyproject.toml), not beside the clone, so a clean clone or an installed wheel has them.
REPLAY_DATA_DIR = Path(__file__).resolve().parent / "replay_data"


@dataclass(frozen=True)
class SourceUnit:
    """A unit found in files: the contract's unit it becomes, by which factor, per interval or not."""

    unit: str
    factor: float = 1.0
    times_interval_hours: bool = False  # a mean power: energy = power x the interval's duration


SOURCE_UNITS: dict[str, SourceUnit] = {
    "kW": SourceUnit("kWh", times_interval_hours=True),
    "W": SourceUnit("Wh", times_interval_hours=True),
    "Wh": SourceUnit("Wh"),
    "kWh": SourceUnit("kWh"),
    "MWh": SourceUnit("MWh"),
    "m3": SourceUnit("m3"),
    "µg/m³": SourceUnit("ug/m3"),
    "ug/m3": SourceUnit("ug/m3"),
    "°C": SourceUnit("Cel"),
    "Cel": SourceUnit("Cel"),
    "%RH": SourceUnit("%RH"),
    "ppm": SourceUnit("ppm"),
    "dBA": SourceUnit("dBA"),
}


EPOCH = "epoch"
"""The time format of a column holding seconds since 1970-01-01 UTC (GBFS' last_reported)."""


class MappingError(ValueError):
    """A mapping file that cannot be used; the message names the file and the key at fault."""


@dataclass(frozen=True)
class ValueSpec:
    """A numeric payload field read from a column (or a column minus another)."""

    field: str
    column: str
    unit: SourceUnit | None = None
    subtract_from: str | None = None  # value = row[subtract_from] - row[column]
    plus: tuple[str, ...] = ()  # value = row[column] + each of these columns
    integer: bool = False


@dataclass(frozen=True)
class SourceEvent:
    """One event read from a row, at its original time (UTC epoch seconds)."""

    time: float
    device_id: str
    family: str
    commune: str
    fields: dict[str, Any]
    interval_s: float | None
    event_id: str

    def payload(self, shift_s: float = 0.0, id_suffix: str = "") -> dict[str, Any]:
        """The event's payload with its times moved by ``shift_s`` seconds; ``id_suffix`` ends
        its event id (a replay whose events must not be taken for an earlier replay's)."""
        event_time = self.time + shift_s
        event_id = self.event_id
        if id_suffix:
            suffix = "-" + _IDENTIFIER_JUNK.sub("-", id_suffix)[:63]
            event_id = event_id[: 128 - len(suffix)] + suffix  # the suffix is never cut
        out = {**self.fields, "event_id": event_id, "event_time": _iso(event_time)}
        if self.interval_s is not None:
            out["interval_start"] = _iso(event_time - self.interval_s)
        return out


@dataclass(frozen=True)
class ReplayMapping:
    name: str
    family: str
    producer_id: str
    file_format: str | None
    default_file: Path | None
    time_columns: tuple[str, ...]
    time_format: str | None
    timezone: ZoneInfo | None
    timezone_column: str | None
    interval_s: float | None
    write_interval_start: bool
    marks_start: bool  # a row's time is the start of its interval, not the end
    device_id: str | None
    device_column: str | None
    device_ids: dict[str, str]
    constants: dict[str, Any]
    text_columns: dict[str, str]
    values: tuple[ValueSpec, ...]
    missing: frozenset[str]
    registry: Mapping[str, Device] = field(repr=False)

    def event(self, row: Mapping[str, Any]) -> SourceEvent:
        """The event of one row; raise SkipRow (with the reason) when the row holds none."""
        device_id = self._device(row)
        device = self.registry[device_id]
        t = self._time(row)
        fields: dict[str, Any] = {
            "schema": SCHEMA_NAME[self.family],
            DEVICE_FIELD[self.family]: device_id,
            "commune": device.commune,
            "producer_id": self.producer_id,
            **self.constants,
        }
        if self.family == "energy" and "sector" not in fields and device.sector:
            fields["sector"] = device.sector
        id_parts = [self.producer_id, device_id, str(int(t))]
        for target, column in self.text_columns.items():
            text = self._cell(row, column)
            fields[target] = text
            id_parts.append(text)
        for spec in self.values:
            fields[spec.field] = self._value(row, spec)
            if spec.unit is not None:
                fields["unit"] = spec.unit.unit
        event_id = _IDENTIFIER_JUNK.sub("-", "-".join(id_parts))[:128]
        interval = self.interval_s if self.write_interval_start else None
        return SourceEvent(t, device_id, self.family, device.commune, fields, interval, event_id)

    def _cell(self, row: Mapping[str, Any], column: str) -> str:
        if column in row:
            value = row[column]
        elif "." in column:  # a field of a nested object (an API's JSON record, GeoJSON properties)
            value = row
            for part in column.split("."):
                if not isinstance(value, Mapping) or part not in value:
                    raise SkipRow(f"no column {column!r}")
                value = value[part]
        else:
            raise SkipRow(f"no column {column!r}")
        text = "" if value is None else str(value).strip()
        if text in self.missing:
            raise SkipRow(f"missing value in {column!r}")
        return text

    def _number(self, row: Mapping[str, Any], column: str) -> float:
        text = self._cell(row, column)
        try:
            return float(text)
        except ValueError:
            raise SkipRow(f"{column!r} is not a number") from None

    def _device(self, row: Mapping[str, Any]) -> str:
        if self.device_id is not None:
            return self.device_id
        assert self.device_column is not None
        source = self._cell(row, self.device_column)
        device_id = self.device_ids.get(source)
        if device_id is None:
            raise UnlistedDevice(f"source device {source!r} has no device in the mapping")
        return device_id

    def _time(self, row: Mapping[str, Any]) -> float:
        text = " ".join(self._cell(row, c) for c in self.time_columns)
        if self.time_format == EPOCH:
            try:
                seconds = float(text)
            except ValueError:
                raise SkipRow(f"time {text!r} is not a number of seconds since 1970 (UTC)") from None
            return seconds + self.interval_s if self.marks_start and self.interval_s else seconds
        try:
            moment = (
                datetime.strptime(text, self.time_format)
                if self.time_format
                else datetime.fromisoformat(text)
            )
        except ValueError:
            raise SkipRow(f"time {text!r} does not match {self.time_format or 'ISO 8601'}") from None
        if moment.tzinfo is None:
            zone = self.timezone
            if self.timezone_column is not None:
                zone = _zone(self._cell(row, self.timezone_column), f"row's {self.timezone_column}")
            assert zone is not None  # load_mapping requires one of them
            moment = moment.replace(tzinfo=zone)
        if self.marks_start:
            assert self.interval_s is not None  # load_mapping requires it
            return moment.timestamp() + self.interval_s
        return moment.timestamp()

    def _value(self, row: Mapping[str, Any], spec: ValueSpec) -> float | int:
        value = self._number(row, spec.column)
        if spec.subtract_from is not None:
            value = self._number(row, spec.subtract_from) - value
        for column in spec.plus:
            value += self._number(row, column)
        if spec.unit is not None:
            value *= spec.unit.factor
            if spec.unit.times_interval_hours:
                assert self.interval_s is not None  # load_mapping requires it
                value *= self.interval_s / 3600
        # 12 significant digits drop float noise (0.30000000000000004) and keep the value:
        # rounding to 6 decimals lost up to 0.5 mWh per minute of a kW reading, 30 mWh an hour.
        return round(value) if spec.integer else float(f"{value:.12g}")


class SkipRow(Exception):
    """A row that holds no event, and why."""


class UnlistedDevice(SkipRow):
    """A row of a source device the mapping does not list (a source serving more devices than
    ours: a department's weather stations, a city's bike stations not yet registered)."""


@dataclass
class Conversion:
    events: list[SourceEvent] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    rows: int = 0


def convert_rows(mapping: ReplayMapping, rows: Iterable[Mapping[str, Any]]) -> Conversion:
    """Every row's event (in time order), and the skipped rows counted by reason."""
    out = Conversion()
    for row in rows:
        out.rows += 1
        try:
            out.events.append(mapping.event(row))
        except SkipRow as skip:
            out.skipped[str(skip)] += 1
    out.events.sort(key=lambda e: e.time)  # files are not always in time order
    return out


_IDENTIFIER_JUNK = re.compile(r"[^A-Za-z0-9_.:\-]+")


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")


def _zone(name: str, where: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise MappingError(
            f"{where}: unknown time zone {name!r} (use an IANA name like Europe/Paris)"
        ) from None


def _table(data: Mapping[str, Any], key: str, where: str) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise MappingError(f"{where}: [{key}] must be a table")
    return value


def read_toml(path: Path) -> dict[str, Any]:
    """A TOML file's table; MappingError names the file when it cannot be read or parsed."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise MappingError(f"{path}: {exc}") from exc


def load_mapping(path: Path, registry: Mapping[str, Device]) -> ReplayMapping:
    """Read and check a mapping file against the device registry; MappingError says what is wrong."""
    return mapping_from_table(read_toml(path), path, registry)


def mapping_from_table(data: Mapping[str, Any], path: Path, registry: Mapping[str, Device]) -> ReplayMapping:
    """Check the mapping keys of a TOML table read from ``path`` (a replay mapping, or a
    collector file, which adds its [source] to the same keys) against the device registry."""
    where = str(path)
    family = data.get("family")
    if family not in FAMILY_NAMES:
        raise MappingError(f"{where}: family must be one of {FAMILY_NAMES}, not {family!r}")
    time_table = _table(data, "time", where)
    columns = time_table.get("columns") or ([time_table["column"]] if "column" in time_table else [])
    if not columns:
        raise MappingError(f"{where}: [time] needs column = '...' or columns = [...]")
    timezone = _zone(time_table["timezone"], f"{where} [time]") if "timezone" in time_table else None
    if timezone is None and "timezone_column" not in time_table and time_table.get("format") != EPOCH:
        raise MappingError(f"{where}: [time] needs timezone or timezone_column (for times without offset)")
    interval = time_table.get("interval_minutes")
    write_interval_start = bool(time_table.get("interval_start", False))
    marks = time_table.get("marks", "end")
    if marks not in ("start", "end") or (marks == "start" and interval is None):
        raise MappingError(f"{where}: [time] marks must be 'end' or 'start' (with interval_minutes)")
    if write_interval_start and interval is None:
        raise MappingError(f"{where}: [time] interval_start = true needs interval_minutes")
    device_table = _table(data, "device", where)
    device_ids = {str(k): str(v) for k, v in _table(device_table, "ids", f"{where} [device]").items()}
    device_id = device_table.get("id")
    if (device_id is None) == ("column" not in device_table):
        raise MappingError(f"{where}: [device] needs either id = '...' or column = '...' with [device.ids]")
    for known in [device_id] if device_id is not None else device_ids.values():
        device = registry.get(known)
        if device is None:
            raise MappingError(f"{where}: device {known!r} is not in the device registry (devices.csv)")
        if device.family != family:
            raise MappingError(f"{where}: device {known!r} is a {device.family} device, not {family}")
    values = []
    for name, spec in _table(data, "values", where).items():
        unit_name = spec.get("unit")
        unit = SOURCE_UNITS.get(unit_name) if unit_name is not None else None
        if unit_name is not None and unit is None:
            raise MappingError(
                f"{where}: [values.{name}] unit {unit_name!r} is not one of {sorted(SOURCE_UNITS)}"
            )
        if unit is not None and unit.times_interval_hours and interval is None:
            raise MappingError(f"{where}: [values.{name}] is a power: [time] needs interval_minutes")
        if "column" not in spec:
            raise MappingError(f"{where}: [values.{name}] needs column = '...'")
        plus = spec.get("plus", [])
        plus = [plus] if isinstance(plus, str) else plus
        if not isinstance(plus, list) or not all(isinstance(c, str) for c in plus):
            raise MappingError(f"{where}: [values.{name}] plus must be a column name or a list of them")
        values.append(
            ValueSpec(
                name,
                spec["column"],
                unit,
                spec.get("subtract_from"),
                tuple(plus),
                bool(spec.get("integer", False)),
            )
        )
    # Relative to the mapping file: a shipped mapping names its excerpt in ../replay_data/, so
    # the default file is found inside the installed package wherever the package is.
    default_file = data.get("file")
    return ReplayMapping(
        name=path.stem,
        family=family,
        producer_id=str(data.get("producer_id", f"replay-{path.stem}")),
        file_format=data.get("format"),
        default_file=(path.parent / default_file).resolve() if default_file else None,
        time_columns=tuple(columns),
        time_format=time_table.get("format"),
        timezone=timezone,
        timezone_column=time_table.get("timezone_column"),
        interval_s=float(interval) * 60 if interval is not None else None,
        write_interval_start=write_interval_start,
        marks_start=marks == "start",
        device_id=device_id,
        device_column=device_table.get("column"),
        device_ids=device_ids,
        constants=_table(data, "constants", where),
        text_columns={str(k): str(v) for k, v in _table(data, "columns", where).items()},
        values=tuple(values),
        missing=frozenset(data.get("missing", ["", "NA"])),
        registry=registry,
    )
