"""A revoked or ended agreement must stop releasing at once; and the stage skips unparsed what the engine
does not want, so what it does not want must be what no agreement held could release."""

from __future__ import annotations

from datetime import datetime, timedelta

from hypothesis import event, given
from hypothesis import strategies as st

from sharing.agreements import Agreement
from tests.unit.sharing_engine_expectations import _allowed, _covered, _covers, _summary
from tests.unit.sharing_engine_fixtures import (
    EXAMPLES,
    INDICATOR_NAMES,
    NOWS,
    Scenario,
    _engine,
    _preferring,
    scenarios,
)


@EXAMPLES
@given(scenarios(), st.data())
def test_a_revoked_agreement_releases_nothing_and_the_others_release_as_before(
    s: Scenario, data: st.DataObject
) -> None:
    held = [
        a.uid for a in s.agreements if _covered(a, s.family, s.events, s.now) or _allowed(a, s.updates, s.now)
    ]
    revoked = data.draw(_preferring(held, [a.uid for a in s.agreements]))
    event("the revoked agreement had something to release" if revoked in held else "it had nothing")
    engine = _engine(s.agreements)
    engine.revoke(revoked)
    engine.revoke("urn:zerocarbon:agreement:never-granted")
    assert revoked not in engine.agreements
    others = _engine(a for a in s.agreements if a.uid != revoked)
    after = engine.events(s.family, s.events, s.now)
    assert _summary(after) == _summary(others.events(s.family, s.events, s.now))
    cells = engine.indicators(s.updates, s.now)
    assert _summary(cells) == _summary(others.indicators(s.updates, s.now))
    assert revoked not in {r.agreement.uid for r in after + cells}


@EXAMPLES
@given(scenarios(), st.integers(0, 24 * 60))
def test_an_agreement_releases_from_its_start_and_nothing_from_its_end_on(
    s: Scenario, minutes_after: int
) -> None:
    engine = _engine(s.agreements)

    def released_under(now: datetime) -> set[str]:
        releases = engine.events(s.family, s.events, now) + engine.indicators(s.updates, now)
        return {r.agreement.uid for r in releases}

    def has_something(agreement: Agreement, now: datetime) -> bool:
        return bool(_covered(agreement, s.family, s.events, now) or _allowed(agreement, s.updates, now))

    for agreement in s.agreements:
        start = agreement.valid_from
        assert (agreement.uid in released_under(start)) == has_something(agreement, start)
        assert agreement.uid not in released_under(start - timedelta(microseconds=1))
        if agreement.valid_until is not None:
            last = agreement.valid_until - timedelta(microseconds=1)
            event(
                "an agreement ended"
                + (" with something to release" if has_something(agreement, last) else "")
            )
            assert (agreement.uid in released_under(last)) == has_something(agreement, last)
            assert agreement.uid not in released_under(
                agreement.valid_until + timedelta(minutes=minutes_after)
            )


@EXAMPLES
@given(scenarios(), NOWS)
def test_a_record_the_engine_does_not_want_would_release_nothing_at_any_time(
    s: Scenario, later: datetime
) -> None:
    """The stage does not even parse a record the engine does not want: skipping it must lose nothing."""
    engine = _engine(s.agreements)
    wanted = any(_covers(a, s.family, e) for a in s.agreements for e in s.events)
    event(f"family wanted: {engine.wants_family(s.family)}")
    if not engine.wants_family(s.family):
        assert not wanted
        assert engine.events(s.family, s.events, s.now) == engine.events(s.family, s.events, later) == []
    for update in s.updates:
        if not engine.wants_indicator(update["indicator"]):
            assert engine.indicators([update], s.now) == engine.indicators([update], later) == []
    targeted = {i for a in s.agreements for i in a.targets.indicators}
    assert {i for i in INDICATOR_NAMES if engine.wants_indicator(i)} == targeted
