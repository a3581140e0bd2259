"""One run of the analysis over hourly series as InfluxDB would give them (analysis/evidence.py):
which pairs are tested, what each record says, and the false discovery rate across the run."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from analysis.causal_validation import START
from analysis.evidence import METHOD_VERSION, analyse, hourly_mean
from analysis.hypotheses import Hypothesis, Selector
from analysis.influx_hourly import by_commune, evidence_line, hourly_query
from analysis.synthetic_series import common_driver, planted_var
from zerocarbon import cli

HOURS = 672
BEGIN = datetime.fromtimestamp(START, UTC)
END = BEGIN + timedelta(hours=HOURS)
NOW = END + timedelta(minutes=5)

X, Y, W = (
    Selector("traffic_vehicles"),
    Selector("environment_value", (("quantity", "no2"),)),
    Selector("passenger_km"),
)
D = Selector("environment_value", (("quantity", "temperature"),))


def points(values: np.ndarray, start: int = START) -> dict[int, float]:
    return {start + 3600 * k: float(v) for k, v in enumerate(values) if not np.isnan(v)}


def hypothesis(
    name: str, cause: Selector, effect: Selector, *confounders: Selector, per: str = "commune"
) -> Hypothesis:
    return Hypothesis(
        name, f"does {cause.indicator} drive {effect.indicator}?", cause, effect, per, 6, 3, confounders
    )


def reader(data: Mapping[Selector, Mapping[str, dict[int, float]]]):  # type: ignore[no-untyped-def]
    return lambda selector: data.get(selector, {})


def test_a_planted_link_is_evidence_where_it_is_and_not_where_it_is_not() -> None:
    rng = np.random.default_rng(7)
    linked, unlinked = planted_var(rng, HOURS).series, planted_var(rng, HOURS).series
    data = {
        X: {"17300": points(linked["x"]), "17028": points(unlinked["w"])},
        Y: {"17300": points(linked["y"]), "17028": points(unlinked["y"]), "17999": points(unlinked["x"])},
    }
    records = analyse([hypothesis("traffic-drives-no2", X, Y)], reader(data), BEGIN, END, NOW)
    by_commune = {r.commune: r for r in records}
    assert set(by_commune) == {"17300", "17028"}, "17999 has no cause: the hypothesis does not apply there"
    found, not_found = by_commune["17300"], by_commune["17028"]
    assert found.status == "evidence" and found.sign == 1 and found.lag_hours == 3
    assert found.p_value is not None and found.p_value < 1e-6
    assert not_found.status == "no_evidence"
    assert found.tests_in_run == 2 and found.method_version == METHOD_VERSION
    assert found.cause == "traffic_vehicles" and found.effect == "environment_value{quantity=no2}"
    assert (found.window_start, found.window_end, found.computed_at) == (BEGIN, END, NOW)
    assert found.n > HOURS - 20


def test_too_few_hours_are_reported_and_left_out_of_the_false_discovery_rate() -> None:
    rng = np.random.default_rng(3)
    series = planted_var(rng, HOURS).series
    short = np.full(HOURS, np.nan)
    short[:30] = series["y"][:30]
    data = {X: {"17300": points(series["x"]), "17028": points(series["x"])},
            Y: {"17300": points(series["y"]), "17028": points(short)}}  # fmt: skip
    records = {r.commune: r for r in analyse([hypothesis("h", X, Y)], reader(data), BEGIN, END, NOW)}
    thin = records["17028"]
    assert thin.status == "insufficient_data" and "too few complete hours" in thin.detail
    assert thin.p_value is None and thin.n == 0
    assert records["17300"].tests_in_run == 1


def test_a_confounder_absent_from_the_commune_is_the_territory_mean() -> None:
    """The common driver measured in one commune only stands for both: controlled for, the
    driven series show no direct link; the record names what was controlled for."""
    rng = np.random.default_rng(11)
    s = common_driver(rng, HOURS).series
    data = {D: {"17300": points(s["d"])}, X: {"17028": points(s["a"])}, Y: {"17028": points(s["b"])}}
    records = analyse([hypothesis("h", X, Y, D)], reader(data), BEGIN, END, NOW)
    assert [(r.commune, r.status, r.confounders) for r in records] == [
        ("17028", "no_evidence", ["environment_value{quantity=temperature}"])
    ]


def test_a_confounder_measured_nowhere_makes_the_pair_insufficient() -> None:
    rng = np.random.default_rng(5)
    s = planted_var(rng, HOURS).series
    data = {X: {"17300": points(s["x"])}, Y: {"17300": points(s["y"])}}
    [record] = analyse([hypothesis("h", X, Y, D)], reader(data), BEGIN, END, NOW)
    assert record.status == "insufficient_data"
    assert record.detail == "no hourly value of the environment_value{quantity=temperature} in the window"


def test_the_territory_tests_the_mean_of_its_communes() -> None:
    rng = np.random.default_rng(13)
    s = planted_var(rng, HOURS).series
    data = {X: {"17300": points(s["x"]), "17028": points(s["x"] + 1)},
            Y: {"17300": points(s["y"]), "17028": points(s["y"] - 1)}}  # fmt: skip
    [record] = analyse([hypothesis("h", X, Y, per="territory")], reader(data), BEGIN, END, NOW)
    assert (record.commune, record.status, record.lag_hours) == ("", "evidence", 3)


def test_the_hourly_mean_averages_what_is_present() -> None:
    assert hourly_mean({"a": {0: 1.0, 3600: 4.0}, "b": {0: 3.0}}) == {0: 2.0, 3600: 4.0}


def test_a_window_off_the_hour_or_backwards_is_refused() -> None:
    with pytest.raises(ValueError, match="not on a whole hour"):
        analyse([], reader({}), BEGIN + timedelta(minutes=1), END, NOW)
    with pytest.raises(ValueError, match="ends before it starts"):
        analyse([], reader({}), END, BEGIN, NOW)


def test_the_records_round_trip_their_contract() -> None:
    rng = np.random.default_rng(7)
    s = planted_var(rng, HOURS).series
    [record] = analyse(
        [hypothesis("h", X, Y)], reader({X: {"1": points(s["x"])}, Y: {"1": points(s["y"])}}), BEGIN, END, NOW
    )
    again = type(record).model_validate_json(record.model_dump_json(by_alias=True))
    assert again == record and record.key() == b"h|1"


def test_a_record_is_one_line_with_only_the_figures_it_has() -> None:
    rng = np.random.default_rng(7)
    s = planted_var(rng, HOURS).series
    data = {X: {"17300": points(s["x"]), "17028": points(s["x"])}, Y: {"17300": points(s["y"])}}
    short = np.full(HOURS, np.nan)
    short[:30] = s["y"][:30]
    data[Y]["17028"] = points(short)
    records = {r.commune: r for r in analyse([hypothesis("a b,c", X, Y)], reader(data), BEGIN, END, NOW)}
    line = evidence_line(records["17300"])
    at = line.rsplit(" ", 1)[1]
    assert line.startswith(r"causal_evidence,commune=17300,hypothesis=a\ b\,c,status=evidence ")
    assert int(at) == int(END.timestamp())
    assert "lag_hours=3i" in line and "n=" in line and 'method_version="1"' in line
    assert "window_hours=672i" in line and "detail" not in line
    thin = evidence_line(records["17028"])
    assert "status=insufficient_data" in thin and "p_value" not in thin and "lag_hours" not in thin
    assert 'detail="too few complete hours to fit lags up to 6 h"' in thin


def test_the_hourly_rows_of_a_commune_are_averaged_and_its_query_names_the_dimensions() -> None:
    hour = datetime(2026, 1, 5, 10, tzinfo=UTC)
    rows = [("17300", hour, 10.0), ("17300", hour, 20.0), (None, hour, 4.0)]
    assert by_commune(rows) == {"17300": {int(hour.timestamp()): 15.0}, "": {int(hour.timestamp()): 4.0}}
    query = hourly_query("indicators", Y, BEGIN, END)
    assert 'r._measurement == "environment_value"' in query and 'r["quantity"] == "no2"' in query
    assert (
        'r.window == "1h"' in query
        and "range(start: 1970-01-05T00:00:00Z, stop: 1970-02-02T00:00:00Z)" in query
    )


def test_the_command_refuses_a_window_off_the_hour_and_says_which_token_it_lacks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ZC_STACK_HOME", str(tmp_path))
    with pytest.raises(SystemExit):
        cli.main(["analyse", "--end", "2026-01-05T10:30:00Z"])
    assert "is not on a whole hour" in capsys.readouterr().err
    assert cli.main(["analyse", "--dry-run"]) == 1
    err = capsys.readouterr().err
    assert "no InfluxDB analysis token" in err and "ZC_INFLUX_ANALYSIS_TOKEN" in err
    broken = tmp_path / "hypotheses.toml"
    broken.write_text('[[hypothesis]]\nname = "x"\ncause = { indicator = "nope" }\n')
    assert cli.main(["analyse", "--dry-run", "--hypotheses", str(broken)]) == 1
    assert "the hypotheses are refused" in capsys.readouterr().err
