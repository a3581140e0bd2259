"""A collector file: where a source publishes (its [source]) and how its records become our events.

One concept, one format: below its [source] table a collector file holds exactly the keys of a
replay mapping (family, producer_id, [time], [device], [columns], [constants], [values]; see
docs/devices.md), read by the same code. docs/collectors.md shows the shipped files.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

from reference.loader import Device
from sensors.replay_mapping import MappingError, ReplayMapping, mapping_from_table, read_toml

SourceKind = Literal["opendatasoft", "gbfs", "http-json", "http-csv"]
SOURCE_KINDS: tuple[SourceKind, ...] = ("opendatasoft", "gbfs", "http-json", "http-csv")
COLLECTORS_DIR = Path(__file__).resolve().parent / "sources"

# Opendatasoft's Explore API v2.1 serves at most 100 records per call (tests/recorded_sources/README.md).
OPENDATASOFT_PAGE_MAX = 100


@dataclass(frozen=True)
class SourceSpec:
    """Where and how often to ask, and how politely."""

    kind: SourceKind
    url: str
    every_s: float
    params: dict[str, str] = field(default_factory=dict)
    records: str = ""  # http-json: the dotted path of the records' array ("" : the body is the array)
    feed: str = "station_status"  # gbfs: the feed named in the discovery file
    language: str | None = None  # gbfs 2.x: the discovery file's language (default: its first)
    page_size: int = OPENDATASOFT_PAGE_MAX  # opendatasoft
    cursor_field: str | None = None  # opendatasoft: a datetime field to ask only what is newer
    csv_delimiter: str = ","
    timeout_s: float = 20.0
    max_attempts: int = 5  # of one request, before the poll gives up and dead-letters why
    min_interval_s: float = 1.0  # between two requests to this source
    max_body_bytes: int = 8 * 1024 * 1024
    unlisted_devices: Literal["dead-letter", "skip"] = "dead-letter"  # rows of devices not in [device.ids]
    licence: str = ""
    attribution: str = ""


@dataclass(frozen=True)
class CollectorFile:
    name: str
    path: Path
    source: SourceSpec
    mapping: ReplayMapping


class CollectorFileError(MappingError):
    """A collector file that cannot be used; the message names the file and the key at fault."""


ENV_PREFIX = "env:"


def resolved_params(spec: SourceSpec, environ: Mapping[str, str]) -> dict[str, str]:
    """The query parameters with each ``env:NAME`` value read from the environment: a partner's
    API key stays out of the file. CollectorFileError names a variable that is not set."""
    out = {}
    for key, value in spec.params.items():
        if value.startswith(ENV_PREFIX):
            name = value.removeprefix(ENV_PREFIX)
            if not environ.get(name):
                raise CollectorFileError(
                    f"params.{key} is read from the environment variable {name}, which is not set"
                )
            value = environ[name]
        out[key] = value
    return out


def load_collector(path: Path, registry: Mapping[str, Device]) -> CollectorFile:
    """Read and check a collector file; the error (CollectorFileError for [source], its parent
    MappingError for the mapping's keys) says which key is wrong and why."""
    data = read_toml(path)
    source = data.get("source")
    if not isinstance(source, dict):
        raise CollectorFileError(
            f"{path}: a collector file needs a [source] table (kind, url, every_seconds)"
        )
    return CollectorFile(
        path.stem, path, source_spec(source, f"{path} [source]"), mapping_from_table(data, path, registry)
    )


def source_spec(table: Mapping[str, Any], where: str) -> SourceSpec:
    """The [source] table checked: a wrong kind, a missing url, a nonsense number are named."""
    known = {
        "kind", "url", "every_seconds", "params", "records", "feed", "language", "page_size",
        "cursor_field", "csv_delimiter", "timeout_seconds", "max_attempts", "min_interval_seconds",
        "licence", "attribution", "max_body_megabytes", "unlisted_devices",
    }  # fmt: skip
    unknown = sorted(set(table) - known)
    if unknown:
        raise CollectorFileError(f"{where}: unknown key(s) {unknown} (known: {sorted(known)})")
    kind = table.get("kind")
    if kind not in SOURCE_KINDS:
        raise CollectorFileError(f"{where}: kind must be one of {SOURCE_KINDS}, not {kind!r}")
    url = table.get("url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise CollectorFileError(f"{where}: url must be an http:// or https:// address, not {url!r}")
    params = table.get("params", {})
    if not isinstance(params, dict):
        raise CollectorFileError(f"{where}: params must be a table of query parameters")
    page_size = _number(table, "page_size", where, OPENDATASOFT_PAGE_MAX, 1, OPENDATASOFT_PAGE_MAX)
    delimiter = table.get("csv_delimiter", ",")
    if not isinstance(delimiter, str) or len(delimiter) != 1:
        raise CollectorFileError(f"{where}: csv_delimiter must be one character, not {delimiter!r}")
    unlisted = table.get("unlisted_devices", "dead-letter")
    if unlisted not in ("dead-letter", "skip"):
        raise CollectorFileError(
            f"{where}: unlisted_devices must be 'dead-letter' or 'skip', not {unlisted!r}"
        )
    return SourceSpec(
        kind=cast(SourceKind, kind),
        url=url,
        every_s=_number(table, "every_seconds", where, None, 1, 7 * 86400),
        params={str(k): str(v) for k, v in params.items()},
        records=str(table.get("records", "")),
        feed=str(table.get("feed", "station_status")),
        language=table.get("language"),
        page_size=int(page_size),
        cursor_field=table.get("cursor_field"),
        csv_delimiter=delimiter,
        timeout_s=_number(table, "timeout_seconds", where, 20.0, 0.1, 600),
        max_attempts=int(_number(table, "max_attempts", where, 5, 1, 100)),
        min_interval_s=_number(table, "min_interval_seconds", where, 1.0, 0, 3600),
        max_body_bytes=int(_number(table, "max_body_megabytes", where, 8, 0.001, 256) * 1024 * 1024),
        unlisted_devices=unlisted,
        licence=str(table.get("licence", "")),
        attribution=str(table.get("attribution", "")),
    )


def _number(
    table: Mapping[str, Any], key: str, where: str, default: float | None, low: float, high: float
) -> float:
    value = table.get(key, default)
    if value is None:
        raise CollectorFileError(f"{where}: {key} is required")
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise CollectorFileError(f"{where}: {key} must be a number from {low:g} to {high:g}, not {value!r}")
    return float(value)


def resolve_collectors(names: list[str], directory: Path = COLLECTORS_DIR) -> list[Path]:
    """Paths as given, or shipped collector files by name; all shipped ones when ``names`` is empty."""
    if not names:
        return sorted(directory.glob("*.toml"))
    paths = []
    for name in names:
        path = Path(name)
        if not path.exists():
            path = directory / f"{name.removesuffix('.toml')}.toml"
        if not path.exists():
            shipped = sorted(p.stem for p in directory.glob("*.toml"))
            raise CollectorFileError(
                f"no collector file {name!r}, and none shipped of that name (shipped: {shipped})"
            )
        paths.append(path)
    return paths
