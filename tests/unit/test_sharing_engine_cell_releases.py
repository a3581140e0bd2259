"""An indicator cell must reach a party only under an aggregate agreement held and in force that allows
it, and a secret cell must go out null: a 0 would read as a value."""

from __future__ import annotations

import json

from hypothesis import event, given
from hypothesis import strategies as st

from sharing.agreement_terms import WINDOW_ORDER, Detail
from sharing.sharing_engine import AGREEMENT_HEADER, VERSION_HEADER, party_topic
from sharing.statistical_secrecy import METERED_ENERGY
from tests.unit.sharing_engine_expectations import (
    _allowed,
    _allows,
    _assert_cell_of,
    _by_uid,
    _in_force,
    _secret,
    _summary,
    _time,
)
from tests.unit.sharing_engine_fixtures import (
    DIMENSIONS,
    EXAMPLES,
    INDICATOR_NAMES,
    MORE_EXAMPLES,
    Scenario,
    _engine,
    _open_data,
    _preferring,
    scenarios,
)


@MORE_EXAMPLES
@given(scenarios())
def test_each_cell_release_is_under_a_held_agreement_in_force_allowing_each_of_its_cells(s: Scenario) -> None:
    engine = _engine(s.agreements)
    releases = engine.indicators(s.updates, s.now)
    event(f"{len(releases)} releases")
    for uid, release in _by_uid(releases).items():
        agreement = release.agreement
        assert engine.agreements[uid] is agreement
        assert _in_force(agreement, s.now) and agreement.detail.is_aggregate
        allowed = _allowed(agreement, s.updates, s.now)
        cells = json.loads(release.value)
        assert release.items == len(cells) == len(allowed)
        for update, cell in zip(allowed, cells, strict=True):
            assert update["indicator"] in agreement.targets.indicators
            assert agreement.window_allowed(update["window"])
            assert agreement.detail is not Detail.TERRITORY_AGGREGATES or "commune" not in cell["dimensions"]
            _assert_cell_of(agreement, update, cell)
        assert release.secret == sum(_secret(u) for u in allowed)
        starts = [_time(u["window_start"]) for u in allowed]
        assert (release.first_time, release.last_time) == (min(starts), max(starts))
        assert release.key is None and release.topic == party_topic(agreement.party)
        assert release.headers == [
            (AGREEMENT_HEADER, uid.encode()),
            (VERSION_HEADER, agreement.version.encode()),
        ]


@EXAMPLES
@given(scenarios())
def test_updates_no_agreement_in_force_allows_are_not_released(s: Scenario) -> None:
    expected = {a.uid for a in s.agreements if _allowed(a, s.updates, s.now)}
    event(f"allowed by {len(expected)}")
    assert set(_by_uid(_engine(s.agreements).indicators(s.updates, s.now))) == expected
    refused = [u for u in s.updates if not any(_allows(a, u, s.now) for a in s.agreements)]
    assert _engine(s.agreements).indicators(refused, s.now) == []
    allowed = [u for u in s.updates if u not in refused]
    assert _summary(_engine(s.agreements).indicators(s.updates, s.now)) == _summary(
        _engine(s.agreements).indicators(allowed, s.now)
    )


@EXAMPLES
@given(scenarios(), st.sampled_from(WINDOW_ORDER), st.data())
def test_a_secret_cell_goes_out_null_never_zero_and_a_published_cell_with_its_value(
    s: Scenario, window: str, data: st.DataObject
) -> None:
    open_data = _open_data(window)
    updates = [
        u
        | {
            "indicator": data.draw(_preferring(METERED_ENERGY, INDICATOR_NAMES)),
            "dimensions": data.draw(st.sampled_from(DIMENSIONS)),
        }
        for u in s.updates
    ]
    releases = _engine([*s.agreements, open_data]).indicators(updates, s.now)
    secrets = sum(r.secret for r in releases)
    event(f"{'secret' if secrets else 'no secret'} cell released")
    for release in releases:
        cells = json.loads(release.value)
        assert release.secret == sum(cell["status"] == "secret" for cell in cells)
        for update, cell in zip(_allowed(release.agreement, updates, s.now), cells, strict=True):
            if _secret(update):
                assert cell["value"] is None and cell["status"] == "secret"
            else:
                assert cell["value"] == update["value"] and type(cell["value"]) is float
                assert cell["status"] == "published"
        assert release.value.count(b'"value":null') == release.secret
