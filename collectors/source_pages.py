"""What to ask a source for, and the records in what it answers, for each kind of source.

Pure: a poll is a chain of requests (``first_request``, then each answer's ``next``), and
``parse`` turns one answer's body into records or raises BadBody naming what is wrong with
it. The network, the retries and the cursor are elsewhere (collectors/collection_run.py).

- ``opendatasoft``: the Explore API v2.1 ``/records`` endpoint, paged by ``limit`` and
  ``offset``; with a ``cursor_field``, ordered by it and filtered on what is not older than
  the cursor, so a poll reads only what is new and resumes after a restart.
- ``gbfs``: the auto-discovery file (``gbfs.json``, v2.x with its languages or v3), then the
  feed it names (``station_status`` by default).
- ``http-json``: one JSON document, its records at a dotted path.
- ``http-csv``: one CSV document with a header row.
"""

from __future__ import annotations

import csv
import io
import json
import re
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from collectors.collector_file import SourceSpec

# Opendatasoft refuses offset + limit beyond this (tests/recorded_sources/README.md); a poll
# stops there and the next one resumes from its cursor.
OPENDATASOFT_WINDOW = 10_000
GBFS_RECORDS = {
    "station_status": "data.stations",
    "station_information": "data.stations",
    "vehicle_status": "data.vehicles",  # v3
    "free_bike_status": "data.bikes",  # v2
}

Row = dict[str, Any]


@dataclass(frozen=True)
class Request:
    url: str
    params: dict[str, str] = field(default_factory=dict)
    what: str = "records"  # "discovery": a GBFS auto-discovery file
    offset: int = 0


@dataclass(frozen=True)
class Page:
    rows: Iterable[Row]  # a CSV file's rows are read as they are used: a department's file is big
    next: Request | None


class BadBody(Exception):
    """An answer that holds no records we can read; ``kind`` is the dead letter's error type."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


def first_request(spec: SourceSpec, since: float | None) -> Request:
    """The poll's first request; ``since`` (epoch seconds): the oldest time not yet collected."""
    if spec.kind == "gbfs":
        return Request(spec.url, dict(spec.params), what="discovery")
    if spec.kind == "opendatasoft":
        return _opendatasoft_request(spec, since, 0)
    return Request(spec.url, dict(spec.params))


def _opendatasoft_request(spec: SourceSpec, since: float | None, offset: int) -> Request:
    params = dict(spec.params)
    params["limit"] = str(spec.page_size)
    params["offset"] = str(offset)
    if spec.cursor_field:
        params["order_by"] = spec.cursor_field
        if since is not None:
            moment = datetime.fromtimestamp(since, UTC).isoformat().replace("+00:00", "Z")
            newer = f"{spec.cursor_field} >= date'{moment}'"
            params["where"] = f"({params['where']}) AND {newer}" if "where" in params else newer
    return Request(spec.url, params, offset=offset)


def parse(spec: SourceSpec, request: Request, body: bytes, since: float | None = None) -> Page:
    """The records of one answer and the request that follows it, if any."""
    body = _gunzipped(body)
    if spec.kind == "http-csv":
        return Page(_csv_rows(body, spec.csv_delimiter), None)
    document = _json(body)
    if spec.kind == "gbfs":
        if request.what == "discovery":
            return Page([], Request(_gbfs_feed_url(document, spec), dict(spec.params)))
        return Page(_rows_at(document, GBFS_RECORDS.get(spec.feed, "data.stations")), None)
    if spec.kind == "opendatasoft":
        rows = _rows_at(document, "results")
        total = document.get("total_count") if isinstance(document, dict) else None
        if not isinstance(total, int) or isinstance(total, bool):
            raise BadBody("unexpected_shape", "an Opendatasoft page without an integer total_count")
        following = request.offset + len(rows)
        more = rows and following < total and following + spec.page_size <= OPENDATASOFT_WINDOW
        return Page(rows, _opendatasoft_request(spec, since, following) if more else None)
    return Page(_rows_at(document, spec.records), None)


GZIP_MAGIC = b"\x1f\x8b"
UNZIPPED_MAX_BYTES = 256 * 1024 * 1024  # a compressed file, not a decompression bomb


def _gunzipped(body: bytes) -> bytes:
    """A gzip file's content (data portals serve big CSV files as .csv.gz), every member of it
    (``cat a.gz b.gz`` is a gzip file too); other bodies as they are."""
    if not body.startswith(GZIP_MAGIC):
        return body
    parts: list[bytes] = []
    size = 0
    rest = body
    while rest:
        inflater = zlib.decompressobj(wbits=31)
        try:
            part = inflater.decompress(rest, UNZIPPED_MAX_BYTES - size + 1)
        except zlib.error as exc:
            raise BadBody("truncated", f"a gzip file that cannot be read: {exc}") from None
        size += len(part)
        if size > UNZIPPED_MAX_BYTES or inflater.unconsumed_tail:
            raise BadBody(
                "too_large", f"a gzip file of more than {UNZIPPED_MAX_BYTES} bytes once decompressed"
            )
        if not inflater.eof:
            raise BadBody("truncated", "a gzip file that ends early")
        parts.append(part)
        rest = inflater.unused_data
    return b"".join(parts)


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except RecursionError:
        raise BadBody("unexpected_shape", "JSON nested too deeply to read") from None
    except UnicodeDecodeError as exc:
        raise BadBody("not_json", f"not UTF-8 text: {exc.reason} at byte {exc.start}") from None
    except json.JSONDecodeError as exc:
        start = body.lstrip()[:1]
        if start == b"<":
            raise BadBody("not_json", "an HTML or XML page where JSON was expected") from None
        if _cut_short(body, exc):
            raise BadBody("truncated", f"the JSON ends early, after {len(body)} bytes ({exc.msg})") from None
        raise BadBody("not_json", f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None


_NUMBER_START = re.compile(rb"-?(\d+\.?\d*([eE][+-]?\d*)?)?")


def _cut_short(body: bytes, exc: json.JSONDecodeError) -> bool:
    """Whether the JSON failed because it ends while a value is still open: the end reached, a
    string not closed, or the rest a beginning of true, false, null or a number."""
    if exc.msg.startswith("Unterminated string"):
        return True
    rest = body.rstrip()[exc.pos :]
    if not rest:
        return True
    if any(word.startswith(rest) for word in (b"true", b"false", b"null")):
        return True
    return _NUMBER_START.fullmatch(rest) is not None


def _rows_at(document: Any, path: str) -> list[Row]:
    value = document
    for part in path.split(".") if path else []:
        if not isinstance(value, dict) or part not in value:
            raise BadBody("unexpected_shape", f"no {path!r} in the answer (missing {part!r})")
        value = value[part]
    if not isinstance(value, list):
        raise BadBody(
            "unexpected_shape", f"{path or 'the answer'} is a {type(value).__name__}, not a list of records"
        )
    if not all(isinstance(row, dict) for row in value):
        raise BadBody("unexpected_shape", f"{path or 'the answer'} holds something else than objects")
    return value


def _gbfs_feed_url(document: Any, spec: SourceSpec) -> str:
    data = document.get("data") if isinstance(document, dict) else None
    if not isinstance(data, dict):
        raise BadBody("unexpected_shape", "a GBFS discovery file without a data object")
    if isinstance(data.get("feeds"), list):  # v3.0
        feeds = data["feeds"]
    else:  # v1 and v2: feeds by language
        languages = [k for k, v in data.items() if isinstance(v, dict) and isinstance(v.get("feeds"), list)]
        if not languages:
            raise BadBody("unexpected_shape", "a GBFS discovery file without feeds")
        if spec.language is not None and spec.language not in languages:
            raise BadBody(
                "unexpected_shape",
                f"the GBFS discovery file has no language {spec.language!r} (it has {languages})",
            )
        language = spec.language or languages[0]
        feeds = data[language]["feeds"]
    for feed in feeds:
        if isinstance(feed, dict) and feed.get("name") == spec.feed and isinstance(feed.get("url"), str):
            return str(feed["url"])
    names = sorted(str(f.get("name")) for f in feeds if isinstance(f, dict))
    raise BadBody("unexpected_shape", f"the GBFS discovery file names no {spec.feed!r} feed (it has {names})")


def _csv_rows(body: bytes, delimiter: str) -> Iterator[Row]:
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BadBody("not_csv", f"not UTF-8 text: {exc.reason} at byte {exc.start}") from None
    if text.lstrip().startswith("<"):
        raise BadBody("not_csv", "an HTML or XML page where CSV was expected")
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        fields = reader.fieldnames
    except csv.Error as exc:
        raise BadBody("not_csv", f"unreadable CSV header: {exc}") from None
    if fields is None or len(fields) < 2:
        raise BadBody("not_csv", f"no header of several columns separated by {delimiter!r}")
    return _rows_of(reader)


def _rows_of(reader: csv.DictReader[str]) -> Iterator[Row]:
    """The rows; a line the csv module cannot read (a NUL byte, an unclosed quote at the end of
    a truncated file) becomes a row holding only its error, dead-lettered as any other."""
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield {"_unreadable_line": reader.line_num, "_error": str(exc)}
            continue
        yield row
