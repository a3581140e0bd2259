"""The public agreement's daily files (sharing/open_data.py): the topic's rows, and a DCAT-AP
record that describes exactly the file written."""

from __future__ import annotations

import csv
import hashlib
import io
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from schemas.local_calendar import ZoneCalendar
from sharing.agreements import Agreement, load_agreement_file
from sharing.open_data import CSV_COLUMNS, LICENCE, csv_bytes, day_cells, open_data_files
from sinks.territory_rollup import OURS
from streams.indicators.catalogue import INDICATORS

PUBLIC = (
    Path(__file__).resolve().parents[2] / "sharing" / "sample_agreements" / "public-open-indicators.jsonld"
)
DAY = date(2026, 12, 1)


def _public() -> Agreement:
    return load_agreement_file(PUBLIC, {*INDICATORS, *OURS})


def _cell(indicator: str, start: str, value: float | None, revision: int = 0, **dims: str) -> dict[str, Any]:
    return {
        "indicator": indicator,
        "unit": "pkm",
        "window": "1d",
        "window_start": start,
        "window_end": "2026-12-02T00:00:00Z",
        "dimensions": dims,
        "value": value,
        "status": "published" if value is not None else "secret",
        "final": revision > 0,
        "revision": revision,
        "attribution": "x",
    }


def test_the_day_holds_the_latest_revision_of_each_cell_starting_that_day() -> None:
    cells = [
        _cell("passenger_km", "2026-12-01T00:00:00Z", 10.0, 0, commune="17300"),
        _cell("passenger_km", "2026-12-01T00:00:00+00:00", 12.0, 1, commune="17300"),  # corrects it
        _cell("passenger_km", "2026-12-01T00:00:00Z", 11.0, 0, commune="17300"),  # older, arrives last
        _cell("passenger_km", "2026-12-01T00:00:00Z", 5.0, 0, commune="17028"),
        _cell("passenger_km", "2026-11-30T23:00:00Z", 99.0, 0, commune="17300"),  # the day before
        _cell("passenger_km", "2026-12-02T00:00:00Z", 99.0, 0, commune="17300"),  # the day after
        _cell("passenger_km", "2026-12-01T23:00:00-01:00", 99.0, 0, commune="17300"),  # 2 December UTC
    ]
    kept = day_cells(cells, DAY)
    assert [(c["dimensions"]["commune"], c["value"]) for c in kept] == [("17028", 5.0), ("17300", 12.0)]


def test_a_day_of_the_territory_begins_at_its_local_midnight() -> None:
    paris = ZoneCalendar("Europe/Paris")
    cells = [
        _cell("passenger_km", "2026-11-30T23:00:00Z", 10.0, 0, commune="17300"),  # 1 December, 00:00 in Paris
        _cell("passenger_km", "2026-12-01T23:00:00Z", 99.0, 0, commune="17300"),  # 2 December in Paris
    ]
    assert [c["value"] for c in day_cells(cells, DAY, paris)] == [10.0]
    files = open_data_files(_public(), cells, DAY, "f.csv", datetime(2026, 12, 2, tzinfo=UTC), paris)
    period = files.record["dct:temporal"]
    assert period["dcat:startDate"]["@value"] == "2026-11-30T23:00:00+00:00"
    assert period["dcat:endDate"]["@value"] == "2026-12-01T23:00:00+00:00"


def test_a_secret_cell_is_a_row_with_no_value_never_a_zero() -> None:
    rows = list(csv.DictReader(io.StringIO(csv_bytes([
        _cell("energy_consumed_kwh", "2026-12-01T00:00:00Z", None, commune="17300", sector="residential"),
        _cell("passenger_km", "2026-12-01T00:00:00Z", 0.0, commune="17300"),
    ]).decode())))  # fmt: skip
    assert list(rows[0]) == list(CSV_COLUMNS)
    assert (rows[0]["status"], rows[0]["value"], rows[0]["commune"]) == ("secret", "", "17300")
    assert rows[0]["dimensions"] == '{"sector": "residential"}'
    assert (rows[1]["status"], rows[1]["value"], rows[1]["dimensions"]) == ("published", "0.0", "")


def test_the_record_describes_the_very_file_and_names_the_agreement_and_its_version() -> None:
    agreement = _public()
    cells = [_cell("passenger_km", "2026-12-01T00:00:00Z", 10.0, commune="17300")]
    files = open_data_files(
        agreement, cells, DAY, "public-open-indicators.csv", datetime(2026, 12, 2, tzinfo=UTC)
    )
    distribution = files.record["dcat:distribution"][0]
    assert files.rows == 1
    assert distribution["spdx:checksum"]["spdx:checksumValue"] == hashlib.sha256(files.csv).hexdigest()
    assert distribution["dcat:byteSize"]["@value"] == str(len(files.csv))
    assert distribution["odrl:hasPolicy"] == {"@id": agreement.uid, "dct:hasVersion": agreement.version}
    assert distribution["dct:license"] == {"@id": LICENCE}
    assert distribution["dcat:downloadURL"] == {"@id": "public-open-indicators.csv"}
    period = files.record["dct:temporal"]
    assert (period["dcat:startDate"]["@value"], period["dcat:endDate"]["@value"]) == (
        "2026-12-01T00:00:00+00:00",
        "2026-12-02T00:00:00+00:00",
    )
    assert files.record["@type"] == "dcat:Dataset" and files.record["dct:title"]
