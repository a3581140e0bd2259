"""A term the loader cannot enforce must refuse the agreement naming it and the term, so that an operator
fixing the file knows which agreement and which term is wrong."""

from __future__ import annotations

import copy

import pytest

from sharing.agreement_terms import EVENT_PURPOSES, ODRL_CONTEXT, Purpose
from sharing.agreements import AgreementError, parse_agreement
from tests.unit.agreement_fixtures import (
    INDICATOR_NAMES,
    LRU,
    PUBLIC,
    REGION,
    YELO,
    Mutation,
    _changed,
    _constraint,
    _delete_within,
    _field_duty,
    _instant,
    _permission,
    _refusal,
    _sample,
    both,
    constraints,
    duties,
    permission_setting,
    removing,
    setting,
)

OPEN_PERMISSION = {"target": "urn:zerocarbon:family:energy", "action": "use"}

# (sample, what is changed, the term the refusal must name, a part of its message)
REFUSALS: list[tuple[str, str, Mutation, str, str]] = [
    (LRU, "unknown top-level term", setting("obligation", []), "obligation", "not a term of this profile"),
    (
        LRU,
        "prohibition",
        setting("prohibition", [OPEN_PERMISSION]),
        "prohibition",
        "everything not permitted",
    ),
    (
        LRU,
        "two permissions",
        lambda d: d["permission"].append(copy.deepcopy(_permission(d))),
        "permission",
        "exactly one",
    ),
    (LRU, "no permission", removing("permission"), "permission", "exactly one"),
    (
        LRU,
        "permission not a list",
        lambda d: d.__setitem__("permission", _permission(d)),
        "permission",
        "exactly one",
    ),
    (LRU, "wrong profile", setting("profile", "urn:zerocarbon:odrl:profile:2"), "profile", "must be"),
    (LRU, "no ODRL context", setting("@context", [{"zc": "urn:zerocarbon:odrl:"}]), "@context", ODRL_CONTEXT),
    (LRU, "zc redefined", setting("@context", [ODRL_CONTEXT, {"zc": "urn:other:"}]), "@context", "zc"),
    (LRU, "wrong type", setting("@type", "Offer"), "@type", "'Offer'"),
    (LRU, "uid without the prefix", setting("uid", "lru-energy-research"), "uid", "must start with"),
    (LRU, "uid of another prefix", setting("uid", "urn:other:lru-energy-research"), "uid", "a name of a-z"),
    (LRU, "uid with capitals", setting("uid", "urn:zerocarbon:agreement:LRU"), "uid", "a name of a-z"),
    (LRU, "uid with a space", setting("uid", "urn:zerocarbon:agreement:lru energy"), "uid", "a name of a-z"),
    (LRU, "uid only the prefix", setting("uid", "urn:zerocarbon:agreement:"), "uid", "a name of a-z"),
    (LRU, "assignee without the prefix", setting("assignee", "lru-lab"), "assignee", "urn:zerocarbon:party:"),
    (
        LRU,
        "assignee with capitals",
        setting("assignee", "urn:zerocarbon:party:LRU"),
        "assignee",
        "not a party name",
    ),
    (LRU, "assigner missing", removing("assigner"), "assigner", "urn:zerocarbon:party:"),
    (
        LRU,
        "unknown permission term",
        permission_setting("assignee", "x"),
        "permission.assignee",
        "not a term",
    ),
    (LRU, "other action", permission_setting("action", "distribute"), "permission.action", "'use'"),
    (
        LRU,
        "unknown family",
        permission_setting("target", "urn:zerocarbon:family:water"),
        "permission.target",
        "no family 'water'",
    ),
    (
        YELO,
        "unknown kind",
        permission_setting("target", ["urn:zerocarbon:kind:scooter_trip"]),
        "permission.target",
        "no kind",
    ),
    (
        PUBLIC,
        "unknown indicator",
        permission_setting("target", ["urn:zerocarbon:indicator:water_m3"]),
        "permission.target",
        "no indicator 'water_m3'",
    ),
    (
        LRU,
        "target of no prefix",
        permission_setting("target", ["urn:other:energy"]),
        "permission.target",
        "names no family",
    ),
    (LRU, "no target", permission_setting("target", []), "permission.target", "at least one target"),
    (
        LRU,
        "target not a string",
        permission_setting("target", [{"@id": "x"}]),
        "permission.target",
        "IRI string",
    ),
    (
        LRU,
        "unknown purpose",
        constraints(drop=("purpose",), add=(_constraint("purpose", "eq", "zc:marketing"),)),
        "constraint purpose",
        "'marketing' is not one of",
    ),
    (LRU, "no purpose", constraints(drop=("purpose",)), "constraint purpose", "is required"),
    (LRU, "no detail", constraints(drop=("zc:detail",)), "constraint zc:detail", "is required"),
    (
        LRU,
        "unknown detail",
        constraints(drop=("zc:detail",), add=(_constraint("zc:detail", "eq", "zc:raw-events"),)),
        "constraint zc:detail",
        "'raw-events'",
    ),
    (LRU, "no start", constraints(drop=("dateTime gteq",)), "constraint dateTime", "needs a start"),
    (
        LRU,
        "end before start",
        constraints(
            drop=("dateTime lt",), add=(_constraint("dateTime", "lt", _instant("2025-12-31T23:00:00+01:00")),)
        ),
        "constraint dateTime",
        "must come after its start",
    ),
    (
        LRU,
        "end at the start",
        constraints(
            drop=("dateTime lt",), add=(_constraint("dateTime", "lt", _instant("2025-12-31T23:00:00Z")),)
        ),
        "constraint dateTime",
        "must come after its start",
    ),
    (
        LRU,
        "naive instant",
        constraints(
            drop=("dateTime gteq",), add=(_constraint("dateTime", "gteq", _instant("2026-01-01T00:00:00")),)
        ),
        "constraint dateTime",
        "with its offset",
    ),
    (
        LRU,
        "a date, not an instant",
        constraints(drop=("dateTime gteq",), add=(_constraint("dateTime", "gteq", "2026-01-01"),)),
        "constraint dateTime",
        "with its offset",
    ),
    (
        LRU,
        "not an instant",
        constraints(
            drop=("dateTime gteq",), add=(_constraint("dateTime", "gteq", {"@type": "xsd:dateTime"}),)
        ),
        "constraint dateTime",
        "with its offset",
    ),
    (
        LRU,
        "dateTime gt",
        constraints(
            drop=("dateTime gteq",), add=(_constraint("dateTime", "gt", _instant("2026-01-01T00:00:00Z")),)
        ),
        "constraint dateTime",
        "operator 'gt' on 'dateTime' is not enforced",
    ),
    (
        LRU,
        "purpose neq",
        constraints(drop=("purpose",), add=(_constraint("purpose", "neq", "zc:public-information"),)),
        "constraint purpose",
        "is not enforced",
    ),
    (
        LRU,
        "an operand of no profile",
        constraints(add=(_constraint("spatial", "eq", "17300"),)),
        "constraint spatial",
        "is not enforced",
    ),
    (
        LRU,
        "a constraint given twice",
        constraints(add=(_constraint("purpose", "eq", "zc:energy-management"),)),
        "constraint purpose",
        "given twice",
    ),
    (
        LRU,
        "a constraint with another key",
        constraints(add=({**_constraint("zc:window", "gteq", "1h"), "unit": "h"},)),
        "permission.constraint",
        "nothing else",
    ),
    (
        LRU,
        "constraints not a list",
        permission_setting("constraint", {}),
        "permission.constraint",
        "is a list",
    ),
    (LRU, "unknown duty action", duties(add=({"action": "compensate"},)), "permission.duty", "'compensate'"),
    (LRU, "duty not an object", duties(add=("delete",)), "permission.duty", "an object"),
    (LRU, "no attribution", duties(drop=("attribute",)), "duty attribute", "is required"),
    (
        LRU,
        "blank attribution",
        duties(drop=("attribute",), add=({"action": "attribute", "zc:attributionText": "  "},)),
        "duty attribute",
        "zc:attributionText",
    ),
    (LRU, "no retention", duties(drop=("delete",)), "duty delete", "is required"),
    (REGION, "no retention, aggregates", duties(drop=("delete",)), "duty delete", "is required"),
    (LRU, "years", duties(drop=("delete",), add=(_delete_within("P1Y"),)), "duty delete", "'P1Y'"),
    (LRU, "months", duties(drop=("delete",), add=(_delete_within("P6M"),)), "duty delete", "'P6M'"),
    (
        LRU,
        "zero",
        duties(drop=("delete",), add=(_delete_within("P0D"),)),
        "duty delete",
        "not a positive duration",
    ),
    (
        LRU,
        "retention not lteq",
        duties(
            drop=("delete",),
            add=({"action": "delete", "constraint": [_constraint("elapsedTime", "gteq", "P1D")]},),
        ),
        "duty delete",
        "elapsedTime lteq",
    ),
    (
        LRU,
        "field of no targeted kind",
        duties(add=(_field_duty("odrl:anonymize", ["device_id"]),)),
        "permission.duty",
        "'device_id' is in none of the targeted kinds",
    ),
    (
        YELO,
        "field of another family",
        duties(add=(_field_duty("zc:omit", ["meter_id"]),)),
        "permission.duty",
        "'meter_id'",
    ),
    (
        LRU,
        "field omitted and pseudonymised",
        duties(add=(_field_duty("zc:omit", ["producer_id"]),)),
        "permission.duty",
        "both omitted and pseudonymised",
    ),
    (
        LRU,
        "field duty of another action",
        duties(add=(_field_duty("odrl:delete", ["meter_id"]),)),
        "permission.duty",
        "a field duty is",
    ),
    (
        PUBLIC,
        "aggregates with a field duty",
        duties(add=(_field_duty("zc:omit", ["commune"]),)),
        "permission.duty",
        "aggregates carry no device field",
    ),
    (
        PUBLIC,
        "aggregates with a producer",
        constraints(add=(_constraint("zc:producer", "eq", "enedis"),)),
        "constraint zc:producer",
        "aggregates mix producers",
    ),
    (
        REGION,
        "aggregates of a family",
        permission_setting("target", ["urn:zerocarbon:family:energy"]),
        "permission.target",
        "targets indicators",
    ),
    (
        REGION,
        "aggregates of a kind and an indicator",
        permission_setting(
            "target", ["urn:zerocarbon:indicator:passenger_km", "urn:zerocarbon:kind:bike_trip"]
        ),
        "permission.target",
        "targets indicators",
    ),
    (
        LRU,
        "events to the public",
        setting("assignee", "urn:zerocarbon:party:public"),
        "assignee",
        "aggregates only",
    ),
    (
        YELO,
        "events to the public, no retention",
        both(setting("assignee", "urn:zerocarbon:party:public"), duties(drop=("delete",))),
        "assignee",
        "aggregates only",
    ),
    (
        LRU,
        "events of an indicator",
        permission_setting(
            "target", ["urn:zerocarbon:family:energy", "urn:zerocarbon:indicator:passenger_km"]
        ),
        "permission.target",
        "not indicators",
    ),
    *[
        (
            LRU,
            f"events for {purpose.value}",
            constraints(
                drop=("purpose",),
                add=(_constraint("purpose", "isAnyOf", ["zc:scientific-research", purpose.value]),),
            ),
            "constraint purpose",
            "events are shared only for",
        )
        for purpose in sorted(set(Purpose) - EVENT_PURPOSES)
    ],
    (
        YELO,
        "window on events",
        constraints(add=(_constraint("zc:window", "gteq", "1d"),)),
        "constraint zc:window",
        "applies to aggregates",
    ),
    (
        PUBLIC,
        "unknown window",
        constraints(drop=("zc:window",), add=(_constraint("zc:window", "gteq", "1w"),)),
        "constraint zc:window",
        "'1w' is not a window size",
    ),
]


@pytest.mark.parametrize(
    ("stem", "mutation", "term", "message"),
    [
        pytest.param(stem, mutation, term, message, id=what)
        for stem, what, mutation, term, message in REFUSALS
    ],
)
def test_a_refusal_names_the_agreement_and_the_faulty_term(
    stem: str, mutation: Mutation, term: str, message: str
) -> None:
    document = _changed(stem, mutation)
    uid = document.get("uid", "(no uid)")
    error = _refusal(document)
    assert (error.agreement, error.term) == (uid, term)
    assert str(error).startswith(f"agreement {uid}: {term}: ")
    assert message in error.problem


def test_an_indicator_is_known_only_if_the_loader_is_given_it() -> None:
    document = _sample(PUBLIC)
    with pytest.raises(AgreementError) as caught:
        parse_agreement(document, INDICATOR_NAMES - {"passenger_km"})
    assert caught.value.term == "permission.target" and "passenger_km" in caught.value.problem


@pytest.mark.parametrize("duration", ["P1000000000D", "P99999999999999999999W"])
def test_a_retention_beyond_timedeltas_range_is_refused_naming_the_term(duration: str) -> None:
    error = _refusal(_changed(LRU, duties(drop=("delete",), add=(_delete_within(duration),))))
    assert (error.agreement, error.term) == ("urn:zerocarbon:agreement:lru-energy-research", "duty delete")


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("assignee", "urn:zerocarbon:party:lru-lab\n"),
        ("uid", "urn:zerocarbon:agreement:lru-energy-research\n"),
    ],
)
def test_a_name_ending_in_a_newline_is_refused(key: str, value: str) -> None:
    assert _refusal(_changed(LRU, setting(key, value))).term == key


def test_two_retentions_are_refused() -> None:
    document = _changed(LRU, duties(drop=("delete",), add=(_delete_within("P30D"), _delete_within("P3650D"))))
    assert _refusal(document).term == "duty delete"


def test_a_context_that_redefines_an_odrl_term_is_refused() -> None:
    context = [
        ODRL_CONTEXT,
        {"zc": "urn:zerocarbon:odrl:", "permission": "http://www.w3.org/ns/odrl/2/prohibition"},
    ]
    assert _refusal(_changed(LRU, setting("@context", context))).term == "@context"
