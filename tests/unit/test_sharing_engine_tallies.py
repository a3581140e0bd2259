"""The audit is written from the engine's tallies: they must add up to exactly the releases made, per
agreement version, revoked ones included, and be empty once taken."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from hypothesis import event, given
from hypothesis import strategies as st

from sharing.agreements import Agreement
from sharing.sharing_engine import Release
from tests.unit.sharing_engine_fixtures import (
    EXAMPLES,
    _engine,
    _open_data,
    agreement_sets,
    indicator_updates,
    nows,
    records,
)


@st.composite
def runs(draw: st.DrawFn) -> tuple[list[Agreement], list[tuple[str, Any, datetime]]]:
    """Agreements, and records and batches of updates to run through them one after the other."""
    agreements = draw(agreement_sets()) + ([_open_data()] if draw(st.booleans()) else [])
    steps: list[tuple[str, Any, datetime]] = []
    for _ in range(draw(st.integers(1, 8))):
        now = draw(nows(agreements))
        if draw(st.booleans()):
            steps.append(("events", draw(records(agreements)), now))
        else:
            steps.append(("indicators", draw(st.lists(indicator_updates(agreements), max_size=4)), now))
    return agreements, steps


@EXAMPLES
@given(runs(), st.data())
def test_the_tallies_add_up_to_the_releases_made_and_are_empty_once_taken(
    run: tuple[list[Agreement], list[tuple[str, Any, datetime]]], data: st.DataObject
) -> None:
    agreements, steps = run
    engine = _engine(agreements)
    revoke_at = data.draw(st.integers(0, len(steps)))
    revoked = data.draw(st.sampled_from([a.uid for a in agreements]))
    releases: list[Release] = []
    for n, (what, item, now) in enumerate(steps):
        if n == revoke_at:
            engine.revoke(revoked)  # what it released before stays in the tallies
        if what == "events":
            family, events = item
            releases += engine.events(family, events, now)
        else:
            releases += engine.indicators(item, now)
    event(f"released under {len({r.agreement.uid for r in releases})} agreements")
    event("secret cells released" if any(r.secret for r in releases) else "no secret cell")
    taken = engine.take_tallies()
    assert set(taken) == {(r.agreement.uid, r.agreement.version) for r in releases}
    for (uid, version), (agreement, tally) in taken.items():
        under = [r for r in releases if r.agreement.uid == uid]
        assert (agreement.uid, agreement.version) == (uid, version)
        assert all(r.agreement is agreement for r in under)
        assert tally.records == len(under)
        assert tally.items == sum(r.items for r in under)
        assert tally.secret == sum(r.secret for r in under)
        assert tally.first_time == min(r.first_time for r in under)
        assert tally.last_time == max(r.last_time for r in under)
    assert engine.take_tallies() == {}
