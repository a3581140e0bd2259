"""An event must reach a party only under an agreement held and in force that covers it, shaped by that
agreement's duties, and a household meter's ids never in clear."""

from __future__ import annotations

import json
from datetime import datetime

from hypothesis import event, given
from hypothesis import strategies as st

from sharing.agreement_terms import Detail
from sharing.agreements import Agreement
from sharing.pseudonyms import Pseudonymiser
from sharing.sharing_engine import AGREEMENT_HEADER, VERSION_HEADER, party_topic
from tests.unit.sharing_engine_expectations import (
    _assert_shared_as_agreed,
    _by_uid,
    _covered,
    _in_force,
    _summary,
    _time,
)
from tests.unit.sharing_engine_fixtures import (
    EVENTS_OF,
    EXAMPLES,
    FAMILIES,
    HOUSEHOLD_FIELDS,
    KEYS,
    MORE_EXAMPLES,
    NOWS,
    PSEUDONYM,
    Event,
    Scenario,
    _engine,
    agreement_sets,
    agreements,
    energy_readings,
    scenarios,
)


@MORE_EXAMPLES
@given(scenarios())
def test_each_event_release_is_under_a_held_agreement_in_force_covering_each_of_its_events(
    s: Scenario,
) -> None:
    engine = _engine(s.agreements)
    releases = engine.events(s.family, s.events, s.now)
    event(f"{len(releases)} releases")
    for uid, release in _by_uid(releases).items():
        agreement = release.agreement
        assert engine.agreements[uid] is agreement
        assert _in_force(agreement, s.now) and agreement.detail is Detail.PSEUDONYMISED_EVENTS
        covered = _covered(agreement, s.family, s.events, s.now)
        shared = json.loads(release.value)
        assert release.items == len(shared) == len(covered)
        for original, item in zip(covered, shared, strict=True):
            _assert_shared_as_agreed(agreement, s.family, original, item)
        assert (release.key, release.secret) == (None, 0)
        times = [_time(e["event_time"]) for e in covered]
        assert (release.first_time, release.last_time) == (min(times), max(times))
        assert release.topic == party_topic(agreement.party) == f"zc.share.{agreement.party}"
        assert release.headers == [
            (AGREEMENT_HEADER, uid.encode()),
            (VERSION_HEADER, agreement.version.encode()),
        ]


@EXAMPLES
@given(scenarios())
def test_events_no_agreement_in_force_covers_are_not_released(s: Scenario) -> None:
    expected = {a.uid for a in s.agreements if _covered(a, s.family, s.events, s.now)}
    assert set(_by_uid(_engine(s.agreements).events(s.family, s.events, s.now))) == expected
    uncovered = [e for e in s.events if not any(_covered(a, s.family, [e], s.now) for a in s.agreements)]
    event("some events uncovered" if uncovered else "every event covered")
    assert _engine(s.agreements).events(s.family, uncovered, s.now) == []
    covered = [e for e in s.events if e not in uncovered]
    assert _summary(_engine(s.agreements).events(s.family, s.events, s.now)) == _summary(
        _engine(s.agreements).events(s.family, covered, s.now)
    )


@EXAMPLES
@given(
    agreement_sets(max_size=3),
    agreements("energy-research", Detail.PSEUDONYMISED_EVENTS, "energy", always=True).filter(
        lambda a: a is not None
    ),
    st.lists(energy_readings(), min_size=1, max_size=10),
    NOWS,
)
def test_a_household_meter_leaves_only_as_its_keyed_pseudonym(
    agreements: list[Agreement], energy: Agreement, readings: list[Event], now: datetime
) -> None:
    releases = _engine([*agreements, energy]).events("energy", readings, now)
    pseudonymise = Pseudonymiser(KEYS)
    households = [r for r in readings if r["sector"] == "residential"]
    event("households released" if households and releases else "no household released")
    for release in releases:
        for reading in households:
            assert reading["meter_id"].encode() not in release.value
            assert reading["event_id"].encode() not in release.value
        covered = _covered(release.agreement, "energy", readings, now)
        for original, item in zip(covered, json.loads(release.value), strict=True):
            if original["sector"] == "residential":
                for name in HOUSEHOLD_FIELDS & set(item):
                    assert item[name] == pseudonymise(original[name]) and PSEUDONYM.match(item[name])


@EXAMPLES
@given(
    agreement_sets(max_size=2),
    st.sampled_from(FAMILIES).flatmap(
        lambda family: st.tuples(
            st.just(family),
            agreements("fields", Detail.PSEUDONYMISED_EVENTS, family, always=True).filter(
                lambda a: a is not None
            ),
            st.lists(EVENTS_OF[family], min_size=1, max_size=6),
        )
    ),
    NOWS,
)
def test_omitted_fields_are_absent_and_pseudonymised_fields_are_pseudonyms(
    agreements: list[Agreement], drawn: tuple[str, Agreement, list[Event]], now: datetime
) -> None:
    family, fields, events = drawn
    releases = _engine([*agreements, fields]).events(family, events, now)
    event(f"{len(releases)} releases")
    for release in releases:
        agreement = release.agreement
        for item in json.loads(release.value):
            assert not agreement.omit_fields & set(item)
            for name in agreement.pseudonymise_fields & set(item):
                assert item[name] is None or PSEUDONYM.match(item[name]), (name, item[name])
        for original, item in zip(
            _covered(agreement, family, events, now), json.loads(release.value), strict=True
        ):
            _assert_shared_as_agreed(agreement, family, original, item)
