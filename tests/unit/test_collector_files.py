"""Collector files (collectors/collector_file.py): the recorded sources' files and the shipped
ones load, and a wrong file is refused naming the file and the key to fix.

What is proven: each collector file of tests/recorded_sources/collectors/ loads (with its
``{PORT}`` filled in) against the shipped registry plus the devices it names, into the
[source] and the mapping it says; each kind of mistake (no [source], an unknown kind, a URL
that is not HTTP, a misspelt key, an interval or page size out of range, a device not
registered) is refused with a message naming the file and the key; ``env:NAME`` parameters
are read from the environment and a missing variable is named; and every shipped collector
file loads against the shipped registry. Why: `zerocarbon collect --check` is how an operator
learns what is wrong with a file, and a collector that starts on a wrong one polls a partner
for nothing.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from collectors.collector_file import (
    COLLECTORS_DIR,
    OPENDATASOFT_PAGE_MAX,
    CollectorFile,
    CollectorFileError,
    SourceSpec,
    load_collector,
    resolved_params,
)
from reference.loader import DEFAULT_DIR, load_reference
from sensors.replay_mapping import MappingError
from tests.collector_devices import registry_with_test_devices

RECORDED_COLLECTORS = Path(__file__).resolve().parents[1] / "recorded_sources" / "collectors"
RECORDED = sorted(RECORDED_COLLECTORS.glob("*.toml"))
SHIPPED = sorted(COLLECTORS_DIR.glob("*.toml"))
PORT = 8765

REGISTRY = registry_with_test_devices()


def _write(tmp_path: Path, text: str, name: str = "source.toml") -> Path:
    path = tmp_path / name
    path.write_text(text.replace("{PORT}", str(PORT)), encoding="utf-8")
    return path


def _load_recorded(tmp_path: Path, name: str) -> CollectorFile:
    text = (RECORDED_COLLECTORS / f"{name}.toml").read_text(encoding="utf-8")
    return load_collector(_write(tmp_path, text, f"{name}.toml"), REGISTRY)


@pytest.mark.parametrize("path", RECORDED, ids=lambda p: p.stem)
def test_each_recorded_collector_file_loads(tmp_path: Path, path: Path) -> None:
    collector = _load_recorded(tmp_path, path.stem)
    assert collector.name == path.stem
    assert collector.source.url.startswith(f"http://127.0.0.1:{PORT}/")
    assert "{PORT}" not in collector.source.url
    assert collector.source.every_s == 60 and collector.source.min_interval_s == 0
    assert collector.mapping.name == path.stem
    assert collector.mapping.producer_id.startswith("collect-test-")
    for device_id in collector.mapping.device_ids.values():
        assert REGISTRY[device_id].family == collector.mapping.family


def test_the_recorded_files_say_what_their_source_is(tmp_path: Path) -> None:
    assert {p.stem for p in RECORDED} == {
        "gbfs-v2",
        "gbfs-v3",
        "http-csv-weather",
        "http-json-air-quality",
        "opendatasoft-car-parks",
    }
    ods = _load_recorded(tmp_path, "opendatasoft-car-parks").source
    assert (ods.kind, ods.page_size, ods.cursor_field) == ("opendatasoft", 5, "date_maj")
    csv = _load_recorded(tmp_path, "http-csv-weather").source
    assert (csv.kind, csv.csv_delimiter) == ("http-csv", ";")
    air = _load_recorded(tmp_path, "http-json-air-quality").source
    assert (air.kind, air.records) == ("http-json", "data.measures")
    gbfs = _load_recorded(tmp_path, "gbfs-v2")
    assert (gbfs.source.kind, gbfs.source.feed, gbfs.source.language) == ("gbfs", "station_status", None)
    assert gbfs.mapping.time_format == "epoch"
    assert gbfs.mapping.device_ids["LR-003"] == "bike-17300-0203"
    # Defaults: what a file does not say.
    assert (ods.timeout_s, ods.max_attempts, ods.params, ods.licence) == (20.0, 5, {}, "")


ODS = (RECORDED_COLLECTORS / "opendatasoft-car-parks.toml").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("change", "key", "message"),
    [
        (("[source]\n", "[origin]\n"), "[source]", "a collector file needs a [source] table"),
        (('kind = "opendatasoft"', 'kind = "soap"'), "kind", "kind must be one of"),
        (('url = "http://', 'url = "ftp://'), "url", "url must be an http:// or https:// address"),
        (('url = "http://127.0.0.1:{PORT}', 'url = "127.0.0.1:{PORT}'), "url", "not '127.0.0.1:"),
        (("every_seconds = 60", "every_secs = 60"), "every_secs", "unknown key(s) ['every_secs']"),
        (("every_seconds = 60", "every_seconds = 0"), "every_seconds", "from 1 to 604800, not 0"),
        (("every_seconds = 60", "every_seconds = 604801"), "every_seconds", "from 1 to 604800"),
        (("every_seconds = 60", 'every_seconds = "60"'), "every_seconds", "must be a number"),
        (("every_seconds = 60\n", ""), "every_seconds", "every_seconds is required"),
        (
            ("page_size = 5", "page_size = 101"),
            "page_size",
            "page_size must be a number from 1 to 100, not 101",
        ),
        (("page_size = 5", "page_size = true"), "page_size", "not True"),
        (
            ('cursor_field = "date_maj"', 'cursor_field = "date_maj"\ncsv_delimiter = ";;"'),
            "csv_delimiter",
            "",
        ),
        (("min_interval_seconds = 0", "min_interval_seconds = -1"), "min_interval_seconds", ""),
    ],
)
def test_a_wrong_source_is_refused_naming_the_file_and_key(
    tmp_path: Path, change: tuple[str, str], key: str, message: str
) -> None:
    assert change[0] in ODS
    path = _write(tmp_path, ODS.replace(*change), "car-parks.toml")
    with pytest.raises(CollectorFileError) as caught:
        load_collector(path, REGISTRY)
    text = str(caught.value)
    assert text.startswith(str(path))
    assert key in text and message in text


def test_page_size_is_at_most_opendatasofts_limit(tmp_path: Path) -> None:
    assert OPENDATASOFT_PAGE_MAX == 100
    path = _write(tmp_path, ODS.replace("page_size = 5", "page_size = 100"))
    assert load_collector(path, REGISTRY).source.page_size == 100


def test_a_device_not_in_the_registry_is_named(tmp_path: Path) -> None:
    path = _write(tmp_path, ODS.replace('"parking-17300-0016"', '"parking-17300-9999"'), "car-parks.toml")
    with pytest.raises(MappingError) as caught:
        load_collector(path, REGISTRY)
    assert str(path) in str(caught.value)
    assert "'parking-17300-9999' is not in the device registry" in str(caught.value)


def test_a_device_of_another_family_is_named(tmp_path: Path) -> None:
    path = _write(tmp_path, ODS.replace('"parking-17300-0016"', '"aq-17300-0201"'))
    with pytest.raises(MappingError, match=re.escape("'aq-17300-0201' is a environment device")):
        load_collector(path, REGISTRY)


def test_an_unreadable_toml_file_is_named(tmp_path: Path) -> None:
    path = _write(tmp_path, ODS.replace("[source]", "[source"))
    with pytest.raises(MappingError) as caught:
        load_collector(path, REGISTRY)
    assert str(path) in str(caught.value)


def _with_params(**params: str) -> SourceSpec:
    return SourceSpec(kind="http-json", url="https://partner.example/api", every_s=60, params=params)


def test_env_params_are_read_from_the_environment() -> None:
    spec = _with_params(api_key="env:ZC_TEST_PARTNER_KEY", format="json")
    environ = {"ZC_TEST_PARTNER_KEY": "s3cret", "OTHER": "x"}
    assert resolved_params(spec, environ) == {"api_key": "s3cret", "format": "json"}
    assert spec.params["api_key"] == "env:ZC_TEST_PARTNER_KEY"  # the secret stays out of the spec


@pytest.mark.parametrize("environ", [{}, {"ZC_TEST_PARTNER_KEY": ""}])
def test_an_env_param_whose_variable_is_not_set_names_it(environ: dict[str, str]) -> None:
    spec = _with_params(format="json", api_key="env:ZC_TEST_PARTNER_KEY")
    with pytest.raises(CollectorFileError) as caught:
        resolved_params(spec, environ)
    assert "ZC_TEST_PARTNER_KEY" in str(caught.value) and "params.api_key" in str(caught.value)


def test_params_from_a_file_are_text(tmp_path: Path) -> None:
    text = ODS.replace(
        "[time]", '[source.params]\nlang = "fr"\nrows = 20\napikey = "env:ZC_ODS_KEY"\n\n[time]'
    )
    spec = load_collector(_write(tmp_path, text), REGISTRY).source
    assert spec.params == {"lang": "fr", "rows": "20", "apikey": "env:ZC_ODS_KEY"}
    assert resolved_params(spec, {"ZC_ODS_KEY": "k"})["apikey"] == "k"


@pytest.mark.parametrize(
    "path",
    SHIPPED
    or [
        pytest.param(None, marks=pytest.mark.skip(reason="no collector file shipped in collectors/sources/"))
    ],
    ids=lambda p: p.stem if p else "none",
)
def test_each_shipped_collector_file_loads_against_the_shipped_registry(path: Path) -> None:
    collector = load_collector(path, load_reference(DEFAULT_DIR).devices)
    assert collector.name == path.stem and collector.mapping.producer_id
