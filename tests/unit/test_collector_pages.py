"""What a collector asks each kind of source, and what it reads in the answers
(collectors/source_pages.py), on the recorded answers of tests/recorded_sources/.

What is proven: for every kind (GBFS 2.3 and 3.0, Opendatasoft Explore v2.1, a JSON API, a
Météo-France CSV file) the first request is the right one, ``parse`` gives exactly the rows
served and the request that follows (the GBFS feed the discovery file names; the next
Opendatasoft page, with the same filter; none after the last), and a cursor field turns into
an ``order_by`` and a ``where`` that keeps a user's own filter. And that every answer holding
no records we can read (HTML, a truncated body, another shape, a nesting bomb, a broken gzip)
raises BadBody with the kind the dead letter will carry, never another exception. Why: a
wrong next request loses pages or loops, and an exception that is not BadBody ends a poll
without a dead letter saying why.
"""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from collectors.collector_file import SourceSpec, source_spec
from collectors.source_pages import BadBody, Page, Request, first_request, parse

RECORDED = Path(__file__).resolve().parents[1] / "recorded_sources"
PORT = "8765"
ODS_URL = "http://127.0.0.1:8765/api/explore/v2.1/catalog/datasets/disponibilite-parkings/records"


def _body(name: str) -> bytes:
    """A recorded answer, with the GBFS files' ``{PORT}`` placeholder filled in."""
    return (RECORDED / name).read_bytes().replace(b"{PORT}", PORT.encode())


def _spec(**table: Any) -> SourceSpec:
    """A [source] table checked as a collector file's is."""
    return source_spec({"every_seconds": 60, **table}, "test [source]")


def _rows(page: Page) -> list[dict[str, Any]]:
    return list(page.rows)


def _bad(spec: SourceSpec, body: bytes, request: Request | None = None) -> BadBody:
    with pytest.raises(BadBody) as caught:
        page = parse(spec, request or first_request(spec, None), body)
        list(page.rows)  # a CSV file's rows are read lazily
    return caught.value


# GBFS ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["2.3", "3.0"])
def test_gbfs_discovery_leads_to_the_station_status_feed(version: str) -> None:
    spec = _spec(kind="gbfs", url=f"http://127.0.0.1:{PORT}/gbfs-{version}/gbfs.json")
    request = first_request(spec, None)
    assert request == Request(spec.url, {}, what="discovery")
    page = parse(spec, request, _body(f"gbfs-{version}/gbfs.json"))
    assert _rows(page) == []
    assert page.next == Request(f"http://127.0.0.1:{PORT}/gbfs-{version}/station_status.json", {})
    assert page.next.what == "records"


def test_gbfs_2_discovery_follows_the_chosen_language() -> None:
    discovery = {
        "last_updated": 1796551200,
        "ttl": 3600,
        "version": "2.3",
        "data": {
            "en": {"feeds": [{"name": "station_status", "url": "http://example.org/en/station_status.json"}]},
            "fr": {"feeds": [{"name": "station_status", "url": "http://example.org/fr/station_status.json"}]},
        },
    }
    body = json.dumps(discovery).encode()
    for language, url in [
        (None, "http://example.org/en/station_status.json"),  # none chosen: the file's first
        ("fr", "http://example.org/fr/station_status.json"),
        ("en", "http://example.org/en/station_status.json"),
    ]:
        spec = _spec(kind="gbfs", url="http://example.org/gbfs.json", language=language)
        page = parse(spec, first_request(spec, None), body)
        assert page.next is not None and page.next.url == url, language


@pytest.mark.parametrize("version", ["2.3", "3.0"])
def test_a_feed_missing_from_gbfs_discovery_names_the_feeds_there(version: str) -> None:
    spec = _spec(kind="gbfs", url="http://example.org/gbfs.json", feed="vehicle_status")
    bad = _bad(spec, _body(f"gbfs-{version}/gbfs.json"))
    assert bad.kind == "unexpected_shape"
    assert "'vehicle_status'" in bad.message
    assert "['station_status', 'system_information']" in bad.message


@pytest.mark.parametrize("version", ["2.3", "3.0"])
@pytest.mark.parametrize("snapshot", ["station_status.json", "station_status.2.json"])
def test_gbfs_station_status_gives_its_four_stations(version: str, snapshot: str) -> None:
    spec = _spec(kind="gbfs", url="http://example.org/gbfs.json")
    request = Request("http://example.org/station_status.json")
    page = parse(spec, request, _body(f"gbfs-{version}/{snapshot}"))
    rows = _rows(page)
    assert [r["station_id"] for r in rows] == ["LR-001", "LR-002", "LR-003", "LR-004"]
    assert page.next is None


# Opendatasoft -------------------------------------------------------------------------------


def test_opendatasoft_pages_follow_each_other_with_the_same_filter() -> None:
    spec = _spec(kind="opendatasoft", url=ODS_URL, page_size=5, params={"where": "nb_places > 100"})
    first = first_request(spec, None)
    assert first == Request(ODS_URL, {"where": "nb_places > 100", "limit": "5", "offset": "0"}, offset=0)

    page1 = parse(spec, first, _body("opendatasoft/records.page1.json"))
    assert len(_rows(page1)) == 5
    assert page1.next == Request(ODS_URL, {"where": "nb_places > 100", "limit": "5", "offset": "5"}, offset=5)

    page2 = parse(spec, page1.next, _body("opendatasoft/records.page2.json"))
    assert [r["date_maj"] for r in _rows(page2)] == [
        "2026-12-06T10:10:00+00:00",
        "2026-12-06T10:15:00+00:00",
        "2026-12-06T10:20:00+00:00",
    ]
    assert page2.next is None  # 5 + 3 = total_count


def test_an_empty_opendatasoft_page_ends_the_poll() -> None:
    spec = _spec(kind="opendatasoft", url=ODS_URL, page_size=5)
    page = parse(spec, first_request(spec, None), b'{"total_count": 8, "results": []}')
    assert _rows(page) == [] and page.next is None


def test_opendatasoft_stops_before_its_window_of_ten_thousand() -> None:
    spec = _spec(kind="opendatasoft", url=ODS_URL, page_size=100)
    rows = [{"n": k} for k in range(100)]
    body = json.dumps({"total_count": 50_000, "results": rows}).encode()
    near_end = Request(ODS_URL, {"limit": "100", "offset": "9800"}, offset=9800)
    page = parse(spec, near_end, body)
    assert page.next is not None and page.next.offset == 9900  # 9900 + 100 <= 10 000
    last = parse(spec, page.next, body)
    assert last.next is None  # 10 000 + 100 would be refused: the next poll resumes from the cursor


def test_a_cursor_field_orders_and_filters_from_since() -> None:
    since = datetime(2026, 12, 6, 10, 5, tzinfo=UTC).timestamp()
    spec = _spec(kind="opendatasoft", url=ODS_URL, page_size=5, cursor_field="date_maj")
    request = first_request(spec, since)
    assert request.params == {
        "limit": "5",
        "offset": "0",
        "order_by": "date_maj",
        "where": "date_maj >= date'2026-12-06T10:05:00Z'",
    }
    # Never collected: every record, in order.
    assert first_request(spec, None).params == {"limit": "5", "offset": "0", "order_by": "date_maj"}
    # The next page asks with the same filter.
    page = parse(spec, request, _body("opendatasoft/records.page1.json"), since)
    assert page.next is not None
    assert page.next.params == {**request.params, "offset": "5"}


def test_a_cursor_filter_is_combined_with_the_users_where_by_and() -> None:
    since = datetime(2026, 12, 6, 10, 5, 30, tzinfo=UTC).timestamp()
    spec = _spec(
        kind="opendatasoft",
        url=ODS_URL,
        cursor_field="date_maj",
        params={"where": "id_parking = 'P-ENCAN' OR id_parking = 'P-VERDUN'"},
    )
    where = first_request(spec, since).params["where"]
    assert where == (
        "(id_parking = 'P-ENCAN' OR id_parking = 'P-VERDUN') AND date_maj >= date'2026-12-06T10:05:30Z'"
    )
    assert spec.params["where"] == "id_parking = 'P-ENCAN' OR id_parking = 'P-VERDUN'"  # untouched


def test_an_opendatasoft_page_without_a_total_count_is_refused() -> None:
    spec = _spec(kind="opendatasoft", url=ODS_URL)
    for body in (
        b'{"results": []}',
        b'{"total_count": "8", "results": []}',
        b'{"total_count": true, "results": []}',
    ):
        assert _bad(spec, body).kind == "unexpected_shape"


# A JSON API and a CSV file ------------------------------------------------------------------


def test_http_json_rows_at_a_dotted_path() -> None:
    spec = _spec(kind="http-json", url="http://example.org/aq.json", records="data.measures")
    request = first_request(spec, None)
    assert request == Request("http://example.org/aq.json", {})
    page = parse(spec, request, _body("http-json/air_quality.json"))
    rows = _rows(page)
    assert len(rows) == 6 and page.next is None
    assert rows[0] == {
        "station": "FR31001",
        "pollutant": "no2",
        "value": 23.4,
        "unit": "µg/m³",
        "date": "2026-12-06T10:00:00Z",
    }


def test_http_json_rows_of_a_top_level_array_and_a_wrong_path() -> None:
    spec = _spec(kind="http-json", url="http://example.org/a.json")
    assert _rows(parse(spec, first_request(spec, None), b'[{"a": 1}, {"a": 2}]')) == [{"a": 1}, {"a": 2}]
    wrong = _spec(kind="http-json", url="http://example.org/a.json", records="data.measurements")
    bad = _bad(wrong, _body("http-json/air_quality.json"))
    assert bad.kind == "unexpected_shape" and "'measurements'" in bad.message
    assert _bad(spec, b'[{"a": 1}, 2]').kind == "unexpected_shape"


def _weather_spec() -> SourceSpec:
    return _spec(kind="http-csv", url="http://example.org/H_17.csv", csv_delimiter=";")


def test_http_csv_of_meteo_france_with_semicolons() -> None:
    spec = _weather_spec()
    page = parse(spec, first_request(spec, None), _body("http-csv/weather.csv"))
    rows = _rows(page)
    assert page.next is None
    assert len(rows) == 6
    assert all(len(r) == 204 and None not in r for r in rows)
    assert [r["AAAAMMJJHH"] for r in rows] == [f"20261206{h:02d}" for h in range(8, 14)]
    assert [r["T"] for r in rows] == ["6.8", "7.4", "8.3", "9.1", "9.9", "10.4"]
    assert {r["NUM_POSTE"] for r in rows} == {"17300001"}
    assert rows[0]["TN"] == ""  # a parameter the station does not measure


def test_a_gzip_csv_is_decompressed() -> None:
    spec = _weather_spec()
    plain = _rows(parse(spec, first_request(spec, None), _body("http-csv/weather.csv")))
    zipped = gzip.compress(_body("http-csv/weather.csv"))
    assert zipped[:2] == b"\x1f\x8b"
    assert _rows(parse(spec, first_request(spec, None), zipped)) == plain


def test_a_gzip_file_of_several_members_is_read_whole() -> None:
    spec = _weather_spec()
    lines = _body("http-csv/weather.csv").splitlines(keepends=True)
    body = gzip.compress(b"".join(lines[:4])) + gzip.compress(b"".join(lines[4:]))
    assert len(gzip.decompress(body).splitlines()) == 7
    assert len(_rows(parse(spec, first_request(spec, None), body))) == 6


def test_a_truncated_gzip_is_truncated() -> None:
    spec = _weather_spec()
    zipped = gzip.compress(_body("http-csv/weather.csv"))
    for cut in (zipped[:-4], zipped[: len(zipped) // 2], zipped[:12]):
        assert _bad(spec, cut).kind == "truncated"


def test_html_for_a_csv_is_not_csv() -> None:
    spec = _weather_spec()
    assert _bad(spec, _body("failures/not_json.html")).kind == "not_csv"
    assert _bad(spec, b"\xff\xfe\x00garbage").kind == "not_csv"
    assert _bad(spec, b"just one column\n1\n").kind == "not_csv"


# Answers without records we can read --------------------------------------------------------


def test_an_html_page_for_json_is_not_json() -> None:
    spec = _spec(kind="opendatasoft", url=ODS_URL)
    bad = _bad(spec, _body("failures/not_json.html"))
    assert bad.kind == "not_json"
    assert str(bad) == bad.message


def test_the_recorded_truncated_page_is_truncated() -> None:
    spec = _spec(kind="opendatasoft", url=ODS_URL, page_size=5)
    bad = _bad(spec, _body("failures/truncated.json"))  # cut inside the key "places_disp...
    assert bad.kind == "truncated"


def test_every_cut_of_a_recorded_answer_is_truncated() -> None:
    spec = _spec(kind="gbfs", url="http://example.org/gbfs.json")
    whole = _body("gbfs-2.3/station_status.json").rstrip()
    request = Request("http://example.org/station_status.json")
    wrong = []
    for end in range(len(whole)):
        try:
            parse(spec, request, whole[:end])
        except BadBody as bad:
            if bad.kind != "truncated":
                wrong.append(whole[max(0, end - 24) : end])
        else:
            wrong.append(whole[:end])
    assert wrong == []


def test_a_json_body_cut_between_tokens_is_truncated() -> None:
    spec = _spec(kind="opendatasoft", url=ODS_URL, page_size=5)
    whole = _body("opendatasoft/records.page1.json")
    cut = whole[: whole.index(b'"nom"', 200)]  # just before a key, after a comma
    assert _bad(spec, cut).kind == "truncated"
    assert _bad(spec, b"").kind == "truncated"


def test_an_unexpected_shape_is_named() -> None:
    spec = _spec(kind="opendatasoft", url=ODS_URL, page_size=5)
    bad = _bad(spec, _body("failures/unexpected_shape.json"))
    assert bad.kind == "unexpected_shape"
    assert "results" in bad.message and "dict" in bad.message


@pytest.mark.parametrize("opening", [b"[", b'{"a":'])
def test_deeply_nested_json_is_a_bad_body_not_a_recursion_error(opening: bytes) -> None:
    for spec in (
        _spec(kind="http-json", url="http://example.org/a.json"),
        _spec(kind="opendatasoft", url=ODS_URL),
    ):
        assert _bad(spec, opening * 100_000).kind == "unexpected_shape"


def test_json_that_is_not_utf8_is_not_json() -> None:
    spec = _spec(kind="http-json", url="http://example.org/a.json")
    assert _bad(spec, b'[{"a": "\xff\xfe"}]').kind == "not_json"
    assert _bad(spec, b'[{"a": 1}] and more').kind == "not_json"
