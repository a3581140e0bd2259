"""What each agreement should release, read from its terms without the engine: the oracle the sharing
engine's properties hold it to."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sharing.agreement_terms import WINDOW_ORDER, Detail
from sharing.agreements import Agreement
from sharing.pseudonyms import Pseudonymiser
from sharing.sharing_engine import Release
from sharing.statistical_secrecy import METERED_ENERGY
from tests.unit.sharing_engine_fixtures import HOUSEHOLD_FIELDS, KEYS, PSEUDONYM, Event, Update


def _in_force(agreement: Agreement, now: datetime) -> bool:
    return agreement.valid_from <= now and (agreement.valid_until is None or now < agreement.valid_until)


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _kind(family: str, event: Event) -> str:
    return str(event["kind"]) if family == "mobility" else f"{family}_reading"


def _covers(agreement: Agreement, family: str, event: Event) -> bool:
    """Whether ``agreement`` covers ``event``'s kind and producer, whenever it is in force."""
    targets = agreement.targets
    if agreement.detail.is_aggregate:
        return False
    if not (_kind(family, event) in targets.kinds or family in targets.families):
        return False
    return agreement.producers is None or event["producer_id"] in agreement.producers


def _covered(agreement: Agreement, family: str, events: list[Event], now: datetime) -> list[Event]:
    """The events of ``events`` ``agreement`` releases at ``now``, in their order."""
    return [e for e in events if _covers(agreement, family, e)] if _in_force(agreement, now) else []


def _allows(agreement: Agreement, update: Update, now: datetime) -> bool:
    """Whether ``agreement`` releases ``update`` at ``now``."""
    if not agreement.detail.is_aggregate or not _in_force(agreement, now):
        return False
    assert agreement.minimum_window is not None
    if update["indicator"] not in agreement.targets.indicators:
        return False
    if WINDOW_ORDER.index(update["window"]) < WINDOW_ORDER.index(agreement.minimum_window):
        return False
    return not (agreement.detail is Detail.TERRITORY_AGGREGATES and "commune" in update["dimensions"])


def _allowed(agreement: Agreement, updates: list[Update], now: datetime) -> list[Update]:
    return [u for u in updates if _allows(agreement, u, now)]


def _secret(update: Update) -> bool:
    return update["indicator"] in METERED_ENERGY and "commune" in update["dimensions"]


def _household(family: str, event: Event) -> bool:
    return family == "energy" and event["sector"] == "residential"


def _by_uid(releases: list[Release]) -> dict[str, Release]:
    """The releases by their agreement's uid: one per agreement."""
    found = {r.agreement.uid: r for r in releases}
    assert len(found) == len(releases)
    return found


def _summary(releases: list[Release]) -> list[tuple[object, ...]]:
    return [(r.agreement.uid, r.key, r.value, r.items, r.secret, r.first_time, r.last_time) for r in releases]


def _assert_shared_as_agreed(agreement: Agreement, family: str, original: Event, shared: Event) -> None:
    """``shared`` is ``original`` without the omitted fields, its pseudonymised and household
    fields as pseudonyms (a text's is its keyed pseudonym), every other field as it was."""
    pseudonymise = Pseudonymiser(KEYS)
    assert set(shared) == set(original) - agreement.omit_fields
    hidden = agreement.pseudonymise_fields | (
        HOUSEHOLD_FIELDS if _household(family, original) else frozenset()
    )
    for name, value in shared.items():
        if name not in hidden or original[name] is None:
            assert value == original[name], name
        elif isinstance(original[name], str):
            assert value == pseudonymise(original[name]), name
        else:
            assert PSEUDONYM.match(value), (name, value)


def _assert_cell_of(agreement: Agreement, update: Update, cell: dict[str, Any]) -> None:
    copied = ("indicator", "unit", "window", "window_start", "window_end", "dimensions", "final", "revision")
    assert {k: cell[k] for k in copied} == {k: update[k] for k in copied}
    assert cell["attribution"] == agreement.attribution
    if _secret(update):
        assert (cell["value"], cell["status"]) == (None, "secret")
    else:
        assert (cell["value"], cell["status"]) == (update["value"], "published")
