"""Replay mappings: parsing and its errors, rows to events (time zones, units, derived values),
and the shipped mappings turning every row of their shipped excerpt into accepted events."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from reference.loader import load_reference
from schemas.dead_letter import Origin
from schemas.families import FAMILIES
from sensors.replay_command import WEEK_S, resolve_mapping, shift_seconds
from sensors.replay_mapping import MAPPINGS_DIR, REPLAY_DATA_DIR, MappingError, convert_rows, load_mapping
from sensors.row_files import file_format, read_rows
from streams.validation.stage import Accepted, validate_payload

REFERENCE = load_reference()
SHIPPED = sorted(MAPPINGS_DIR.glob("*.toml"))

METER = """
family = "energy"
producer_id = "test-replay"
[time]
columns = ["day", "clock"]
format = "%d/%m/%Y %H:%M"
timezone = "Europe/Paris"
interval_minutes = 15
interval_start = true
[device]
column = "meter"
[device.ids]
A = "elec-17300-0001"
[constants]
carrier = "electricity"
kind = "interval"
[values.quantity]
column = "power"
unit = "kW"
"""


def _mapping(tmp_path: Path, text: str = METER, name: str = "meter.toml"):  # type: ignore[no-untyped-def]
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return load_mapping(path, REFERENCE.devices)


def test_a_row_becomes_an_event_in_utc_with_energy_from_mean_power(tmp_path: Path) -> None:
    mapping = _mapping(tmp_path)
    conversion = convert_rows(mapping, [{"day": "02/03/2026", "clock": "09:00", "meter": "A", "power": "2"}])
    payload = conversion.events[0].payload()
    assert payload["event_time"] == "2026-03-02T08:00:00Z"  # 09:00 in Paris in winter
    assert payload["interval_start"] == "2026-03-02T07:45:00Z"
    assert payload["quantity"] == 0.5 and payload["unit"] == "kWh"  # 2 kW over 15 min
    assert payload["commune"] == "17300" and payload["sector"] == "residential"  # from the registry


def test_summer_time_is_applied_to_wall_clock_times(tmp_path: Path) -> None:
    mapping = _mapping(tmp_path)
    event = mapping.event({"day": "01/07/2026", "clock": "09:00", "meter": "A", "power": "1"})
    assert event.payload()["event_time"] == "2026-07-01T07:00:00Z"


def test_rows_without_an_event_are_skipped_with_their_reason(tmp_path: Path) -> None:
    mapping = _mapping(tmp_path)
    rows = [
        {"day": "02/03/2026", "clock": "09:00", "meter": "A", "power": "NA"},
        {"day": "02/03/2026", "clock": "09:00", "meter": "Z", "power": "1"},
        {"day": "2026-03-02", "clock": "09:00", "meter": "A", "power": "1"},
    ]
    conversion = convert_rows(mapping, rows)
    assert conversion.events == [] and conversion.rows == 3
    assert set(conversion.skipped) == {
        "missing value in 'power'",
        "source device 'Z' has no device in the mapping",
        "time '2026-03-02 09:00' does not match %d/%m/%Y %H:%M",
    }


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("energy", "water"), "family must be one of"),
        (('A = "elec-17300-0001"', 'A = "nobody-0001"'), "not in the device registry"),
        (('A = "elec-17300-0001"', 'A = "aq-17300-0001"'), "is a environment device"),
        (('unit = "kW"', 'unit = "horsepower"'), "unit 'horsepower'"),
        (('timezone = "Europe/Paris"', 'timezone = "Europe/Atlantis"'), "unknown time zone"),
        (("interval_minutes = 15\n", ""), "needs interval_minutes"),
    ],
)
def test_a_wrong_mapping_is_refused_naming_what_to_fix(
    tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    with pytest.raises(MappingError, match=message):
        _mapping(tmp_path, METER.replace(*change))


def test_json_rows_and_derived_values(tmp_path: Path) -> None:
    mapping = _mapping(
        tmp_path,
        """
family = "mobility"
[time]
column = "at"
timezone = "UTC"
[device]
id = "parking-17300-0001"
[constants]
kind = "parking_occupancy"
[values.occupied_spot_number]
column = "free"
subtract_from = "capacity"
integer = true
[values.total_spot_number]
column = "capacity"
integer = true
""",
        "parking.toml",
    )
    data = tmp_path / "rows.json"
    data.write_text(json.dumps([{"at": "2026-03-02T10:00:00+01:00", "free": 120, "capacity": 450}]))
    [event] = convert_rows(mapping, read_rows(data, file_format(data))).events
    payload = event.payload()
    assert payload["occupied_spot_number"] == 330 and payload["total_spot_number"] == 450
    assert payload["event_time"] == "2026-03-02T09:00:00Z"  # the offset in the file wins
    assert payload["producer_id"] == "replay-parking"


def test_times_move_by_whole_weeks_to_end_in_the_past_week() -> None:
    last = datetime(2016, 3, 24, 23, 0, tzinfo=UTC).timestamp()
    now = datetime(2026, 11, 29, 12, 0, tzinfo=UTC).timestamp()
    shift = shift_seconds("weeks", last - 86400, last, now)
    assert shift % WEEK_S == 0 and now - WEEK_S < last + shift <= now
    assert shift_seconds("none", 0, last, now) == 0
    assert shift_seconds("2026-01-01T00:00:00Z", last - 86400, last, now) == pytest.approx(
        datetime(2026, 1, 1, tzinfo=UTC).timestamp() - (last - 86400)
    )


def test_shipped_mappings_are_found_by_name() -> None:
    assert {p.stem for p in SHIPPED} == {"household-power-sceaux", "air-quality-openaq", "larochelle-parking"}
    assert resolve_mapping("larochelle-parking") == MAPPINGS_DIR / "larochelle-parking.toml"


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_each_shipped_mapping_names_an_excerpt_shipped_in_the_package(path: Path) -> None:
    mapping = load_mapping(path, REFERENCE.devices)
    assert mapping.default_file is not None
    # Inside the package (not ../shared): a clean clone and an installed wheel both have it.
    assert mapping.default_file.is_relative_to(REPLAY_DATA_DIR / mapping.name), mapping.default_file
    assert mapping.default_file.is_file()
    assert (mapping.default_file.parent / "README.md").is_file()  # origin, licence, how it was cut


def _rows_missing_a_value(path: Path, columns: set[str], missing: frozenset[str]) -> tuple[int, int]:
    """The file's data rows, and those with a "missing" cell in ``columns``, read with csv alone."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        rows = list(csv.DictReader(handle))
    return len(rows), sum(any(row[c].strip() in missing for c in columns) for row in rows)


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_each_shipped_mapping_turns_its_real_file_into_accepted_events(path: Path) -> None:
    mapping = load_mapping(path, REFERENCE.devices)
    assert mapping.default_file is not None
    rows = read_rows(mapping.default_file, file_format(mapping.default_file, mapping.file_format))
    conversion = convert_rows(mapping, rows)
    value_columns = {c for v in mapping.values for c in (v.column, v.subtract_from) if c is not None}
    total, missing = _rows_missing_a_value(mapping.default_file, value_columns, mapping.missing)
    # Every row gives an event but those missing a value, and those are skipped for that reason.
    assert conversion.rows == total and len(conversion.events) == total - missing, conversion.skipped
    assert all(reason.startswith("missing value in") for reason in conversion.skipped), conversion.skipped
    now = datetime.now(UTC)
    shift = shift_seconds("weeks", conversion.events[0].time, conversion.events[-1].time, now.timestamp())
    origin = Origin(transport="mqtt", topic="zc-test")
    for event in conversion.events:
        raw = json.dumps(event.payload(shift)).encode()
        outcome = validate_payload(FAMILIES[mapping.family], raw, origin, REFERENCE, now)
        assert isinstance(outcome, Accepted), (raw, getattr(outcome, "errors", None))
    assert len({e.event_id for e in conversion.events}) == len(conversion.events)
