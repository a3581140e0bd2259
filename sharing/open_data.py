"""The public agreement's daily open-data files: a CSV of the day's cells and its DCAT-AP record.

The rows are the public topic's own: each cell of ``zc.share.public`` whose window starts in
the territory's local day (``ZC_TIME_ZONE``, as the indicator stage cuts its days), the latest
revision of each (a later update of a window replaces an earlier one, as on the topic), secret
cells with an empty value and the status ``secret``. The record describes the file for a
catalogue (data.gouv.fr harvests DCAT-AP): what, where, when, under which licence and which
agreement (``odrl:hasPolicy``), its size and SHA-256.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from schemas.local_calendar import UTC_CALENDAR, ZoneCalendar
from sharing.agreements import Agreement

CSV_COLUMNS = (
    "indicator",
    "unit",
    "window",
    "window_start",
    "window_end",
    "commune",
    "dimensions",
    "value",
    "status",
    "final",
    "revision",
)
LICENCE = "http://spdx.org/licenses/etalab-2.0"
"""Etalab's Licence Ouverte 2.0, the licence of French public open data (SPDX: etalab-2.0)."""
EPCI_SIREN = "241700434"
EU = "http://publications.europa.eu/resource/authority/"


@dataclass(frozen=True)
class OpenDataFiles:
    csv: bytes
    record: dict[str, Any]
    rows: int


def day_bounds(day: date, calendar: ZoneCalendar) -> tuple[datetime, datetime]:
    """Where the local date ``day`` begins and ends, in UTC."""
    start, end = calendar.bounds_of(day)
    return datetime.fromtimestamp(start, UTC), datetime.fromtimestamp(end, UTC)


def day_cells(
    cells: Iterable[dict[str, Any]], day: date, calendar: ZoneCalendar = UTC_CALENDAR
) -> list[dict[str, Any]]:
    """The latest revision of each cell whose window starts in ``day`` (a local date of
    ``calendar``), in a stable order."""
    start, end = day_bounds(day, calendar)
    latest: dict[tuple[str, str, str, str], dict[str, Any]] = {}
    for cell in cells:
        window_start = datetime.fromisoformat(str(cell["window_start"]).replace("Z", "+00:00"))
        if not start <= window_start < end:
            continue
        dimensions = json.dumps(cell.get("dimensions") or {}, sort_keys=True, ensure_ascii=False)
        key = (cell["indicator"], cell["window"], window_start.isoformat(), dimensions)
        known = latest.get(key)
        if known is None or int(cell.get("revision", 0)) >= int(known.get("revision", 0)):
            latest[key] = cell
    return [latest[key] for key in sorted(latest)]


def csv_bytes(cells: list[dict[str, Any]]) -> bytes:
    """The cells as CSV (UTF-8, comma, header): one row per cell, its dimensions as JSON."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for cell in cells:
        dimensions = dict(cell.get("dimensions") or {})
        secret = cell.get("status") == "secret"
        writer.writerow(
            [
                cell["indicator"],
                cell.get("unit", ""),
                cell["window"],
                cell["window_start"],
                cell.get("window_end", ""),
                dimensions.pop("commune", ""),
                json.dumps(dimensions, sort_keys=True, ensure_ascii=False) if dimensions else "",
                "" if secret or cell.get("value") is None else repr(float(cell["value"])),
                cell.get("status", "published"),
                str(bool(cell.get("final", False))).lower(),
                int(cell.get("revision", 0)),
            ]
        )
    return out.getvalue().encode()


def dcat_record(
    agreement: Agreement,
    day: date,
    data: bytes,
    file_name: str,
    now: datetime,
    calendar: ZoneCalendar = UTC_CALENDAR,
) -> dict[str, Any]:
    """The DCAT-AP record (JSON-LD) of one day's file."""
    start, end = day_bounds(day, calendar)
    return {
        "@context": {
            "dcat": "http://www.w3.org/ns/dcat#",
            "dct": "http://purl.org/dc/terms/",
            "odrl": "http://www.w3.org/ns/odrl/2/",
            "spdx": "http://spdx.org/rdf/terms#",
            "xsd": "http://www.w3.org/2001/XMLSchema#",
            "skos": "http://www.w3.org/2004/02/skos/core#",
            "foaf": "http://xmlns.com/foaf/0.1/",
        },
        "@type": "dcat:Dataset",
        "dct:identifier": f"{agreement.uid}:{day.isoformat()}",
        "dct:title": f"La Rochelle Territoire Zéro Carbone : indicateurs du {day.isoformat()}",
        "dct:description": (
            "Indicateurs du programme La Rochelle Territoire Zéro Carbone (énergie, émissions, "
            "mobilité, environnement) par commune et pour le territoire, fenêtres d'un jour et "
            "plus, tels que publiés sous l'accord d'usage public. Une cellule soumise au secret "
            "statistique porte le statut 'secret' et aucune valeur."
        ),
        "dct:publisher": {"@type": "foaf:Agent", "foaf:name": "Communauté d'Agglomération de La Rochelle"},
        "dct:spatial": {
            "@type": "dct:Location",
            "dct:identifier": EPCI_SIREN,
            "skos:prefLabel": "Communauté d'Agglomération de La Rochelle (28 communes)",
        },
        "dct:temporal": {
            "@type": "dct:PeriodOfTime",
            "dcat:startDate": {"@value": start.isoformat(), "@type": "xsd:dateTime"},
            "dcat:endDate": {"@value": end.isoformat(), "@type": "xsd:dateTime"},
        },
        "dcat:theme": [{"@id": f"{EU}data-theme/ENVI"}, {"@id": f"{EU}data-theme/ENER"}],
        "dcat:keyword": ["climat", "énergie", "émissions de gaz à effet de serre", "mobilité", "La Rochelle"],
        "dct:accrualPeriodicity": {"@id": f"{EU}frequency/DAILY"},
        "dct:issued": {"@value": now.isoformat(), "@type": "xsd:dateTime"},
        "dcat:distribution": [
            {
                "@type": "dcat:Distribution",
                "dcat:accessURL": {"@id": file_name},
                "dcat:downloadURL": {"@id": file_name},
                "dcat:mediaType": {"@id": "http://www.iana.org/assignments/media-types/text/csv"},
                "dct:license": {"@id": LICENCE},
                "dcat:byteSize": {"@value": str(len(data)), "@type": "xsd:nonNegativeInteger"},
                "spdx:checksum": {
                    "@type": "spdx:Checksum",
                    "spdx:algorithm": {"@id": "spdx:checksumAlgorithm_sha256"},
                    "spdx:checksumValue": hashlib.sha256(data).hexdigest(),
                },
                "odrl:hasPolicy": {"@id": agreement.uid, "dct:hasVersion": agreement.version},
                "dct:rights": agreement.attribution,
            }
        ],
    }


def open_data_files(
    agreement: Agreement,
    cells: Iterable[dict[str, Any]],
    day: date,
    file_name: str,
    now: datetime,
    calendar: ZoneCalendar = UTC_CALENDAR,
) -> OpenDataFiles:
    """One local day's CSV and its record, from the cells the public agreement released."""
    rows = day_cells(cells, day, calendar)
    data = csv_bytes(rows)
    return OpenDataFiles(data, dcat_record(agreement, day, data, file_name, now, calendar), len(rows))
