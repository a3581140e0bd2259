"""Data-use agreements (sharing/agreements.py): the shipped samples load into the terms they
say, an agreement's version is the hash of what it grants, and every term the loader cannot
enforce is refused naming the agreement and the term.

Why: an agreement the loader misreads grants what the producer did not mean to grant, and
an operator fixing a refused file needs to know which agreement and which term is wrong.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from sharing.agreement_terms import EVENT_PURPOSES, ODRL_CONTEXT, WINDOW_ORDER, Detail, Purpose
from sharing.agreements import (
    Agreement,
    AgreementError,
    Targets,
    agreement_version,
    canonical_json,
    iso_duration,
    load_agreement_file,
    parse_agreement,
)
from sinks.territory_rollup import OURS
from streams.indicators.catalogue import INDICATORS

SAMPLES_DIR = Path(__file__).resolve().parents[2] / "sharing" / "sample_agreements"
SAMPLES = sorted(SAMPLES_DIR.glob("*.jsonld"))
INDICATOR_NAMES = set(INDICATORS) | set(OURS)
CET, CEST = timezone(timedelta(hours=1)), timezone(timedelta(hours=2))

Document = dict[str, Any]
Mutation = Callable[[Document], None]


def _sample(stem: str) -> Document:
    document: Document = json.loads((SAMPLES_DIR / f"{stem}.jsonld").read_text(encoding="utf-8"))
    return document


def _load(document: Any) -> Agreement:
    return parse_agreement(document, INDICATOR_NAMES)


def _refusal(document: Any) -> AgreementError:
    with pytest.raises(AgreementError) as caught:
        _load(document)
    return caught.value


# --- Building and changing documents -----------------------------------------------------


def _constraint(left: str, operator: str, right: Any) -> dict[str, Any]:
    return {"leftOperand": left, "operator": operator, "rightOperand": right}


def _instant(text: str) -> dict[str, str]:
    return {"@value": text, "@type": "xsd:dateTime"}


def _delete_within(duration: str) -> dict[str, Any]:
    return {"action": "delete", "constraint": [_constraint("elapsedTime", "lteq", {"@value": duration})]}


def _field_duty(action: str, fields: list[str]) -> dict[str, Any]:
    refinement = [_constraint("zc:field", "isAnyOf", fields)]
    return {"action": [{"rdf:value": {"@id": action}, "refinement": refinement}]}


def _permission(document: Document) -> dict[str, Any]:
    permission: dict[str, Any] = document["permission"][0]
    return permission


def setting(key: str, value: Any) -> Mutation:
    """The top-level ``key`` set to ``value``."""
    return lambda document: document.__setitem__(key, value)


def removing(key: str) -> Mutation:
    return lambda document: document.__delitem__(key)


def permission_setting(key: str, value: Any) -> Mutation:
    return lambda document: _permission(document).__setitem__(key, value)


def constraints(drop: tuple[str, ...] = (), add: tuple[dict[str, Any], ...] = ()) -> Mutation:
    """The permission's constraints without those on the left operands ``drop`` (``dateTime
    lt`` for the end only), with ``add``."""

    def change(document: Document) -> None:
        kept = [
            c
            for c in _permission(document)["constraint"]
            if c["leftOperand"] not in drop and f"{c['leftOperand']} {c['operator']}" not in drop
        ]
        _permission(document)["constraint"] = kept + [copy.deepcopy(c) for c in add]

    return change


def duties(drop: tuple[str, ...] = (), add: tuple[Any, ...] = ()) -> Mutation:
    """The permission's duties without those whose action is in ``drop`` (``field`` for the
    field duties), with ``add``."""

    def change(document: Document) -> None:
        def action(duty: dict[str, Any]) -> str:
            return "field" if isinstance(duty["action"], list) else str(duty["action"])

        kept = [d for d in _permission(document)["duty"] if action(d) not in drop]
        _permission(document)["duty"] = kept + [copy.deepcopy(d) for d in add]

    return change


def both(*mutations: Mutation) -> Mutation:
    def change(document: Document) -> None:
        for mutation in mutations:
            mutation(document)

    return change


def _changed(stem: str, mutation: Mutation) -> Document:
    document = _sample(stem)
    mutation(document)
    return document


# --- The shipped samples ------------------------------------------------------------------


def test_the_samples_are_the_four_documented_agreements() -> None:
    assert [p.stem for p in SAMPLES] == [
        "lru-energy-research",
        "public-open-indicators",
        "region-territory-steering",
        "yelo-mobility-planning",
    ]


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.stem)
def test_each_sample_loads_with_its_document_verbatim(path: Path) -> None:
    agreement = load_agreement_file(path, INDICATOR_NAMES)
    assert agreement.document == json.loads(path.read_text(encoding="utf-8"))
    assert agreement.assigner == "cda-lr"
    assert agreement.attribution.startswith(("Données : ", "Communauté d'Agglomération de La Rochelle"))


def test_the_energy_research_agreement_reads_back_its_terms() -> None:
    agreement = _load(_sample("lru-energy-research"))
    assert agreement.uid == "urn:zerocarbon:agreement:lru-energy-research"
    assert agreement.name == "lru-energy-research"
    assert agreement.party == "lru-lab"
    assert agreement.targets == Targets(families=frozenset({"energy"}))
    assert agreement.producers == {"enedis", "grdf"}
    assert agreement.purposes == (Purpose.SCIENTIFIC_RESEARCH,)
    assert agreement.detail is Detail.PSEUDONYMISED_EVENTS
    assert agreement.minimum_window is None
    assert agreement.valid_from == datetime(2026, 1, 1, tzinfo=CET)
    assert agreement.valid_until == datetime(2029, 1, 1, tzinfo=CET)
    assert agreement.retention == timedelta(days=365)
    assert agreement.omit_fields == {"ingestion_time"}
    assert agreement.pseudonymise_fields == {"producer_id"}
    assert "convention de recherche LRU-2026-04" in agreement.attribution


def test_the_open_data_agreement_reads_back_its_terms() -> None:
    agreement = _load(_sample("public-open-indicators"))
    assert agreement.uid == "urn:zerocarbon:agreement:public-open-indicators"
    assert agreement.party == "public"
    assert agreement.targets == Targets(
        indicators=frozenset(
            {
                "energy_consumed_kwh",
                "emissions_kgco2e",
                "passenger_km",
                "mobility_emissions_kgco2e",
                "parking_occupancy_ratio",
                "environment_value",
                "territory_emissions_kgco2e",
                "territory_net_emissions_kgco2e",
            }
        )
    )
    assert agreement.producers is None
    assert agreement.purposes == (Purpose.PUBLIC_INFORMATION,)
    assert agreement.detail is Detail.COMMUNE_AGGREGATES
    assert agreement.minimum_window == "1d"
    assert agreement.valid_from == datetime(2026, 1, 1, tzinfo=CET)
    assert agreement.valid_until is None
    assert agreement.retention is None  # open data: no retention limit
    assert agreement.omit_fields == agreement.pseudonymise_fields == frozenset()
    assert agreement.attribution.endswith("Licence Ouverte 2.0 (Etalab)")


def test_the_regional_steering_agreement_reads_back_its_terms() -> None:
    agreement = _load(_sample("region-territory-steering"))
    assert agreement.uid == "urn:zerocarbon:agreement:areca-territory-steering"
    assert agreement.party == "regional-observatory"
    assert agreement.targets.indicators == {
        "territory_emissions_kgco2e",
        "territory_trajectory_ratio",
        "territory_net_emissions_kgco2e",
        "territory_net_trajectory_ratio",
    }
    assert not agreement.targets.families and not agreement.targets.kinds
    assert agreement.purposes == (Purpose.TERRITORIAL_STEERING, Purpose.PUBLIC_INFORMATION)
    assert agreement.detail is Detail.TERRITORY_AGGREGATES
    assert agreement.minimum_window == "1h"
    assert agreement.valid_from == datetime(2026, 9, 1, tzinfo=CEST)
    assert agreement.valid_until == datetime(2031, 1, 1, tzinfo=CET)
    assert agreement.retention == timedelta(days=3650)


def test_the_bike_planning_agreement_reads_back_its_terms() -> None:
    agreement = _load(_sample("yelo-mobility-planning"))
    assert agreement.uid == "urn:zerocarbon:agreement:yelo-bike-planning"
    assert agreement.party == "yelo-operator"
    assert agreement.targets == Targets(kinds=frozenset({"bike_trip", "bike_station_status"}))
    assert agreement.targets.covers_kind("bike_trip") and not agreement.targets.covers_kind(
        "parking_occupancy"
    )
    assert agreement.producers is None
    assert agreement.purposes == (Purpose.MOBILITY_PLANNING,)
    assert agreement.detail is Detail.PSEUDONYMISED_EVENTS
    assert agreement.valid_from == datetime(2026, 6, 1, tzinfo=CEST)
    assert agreement.valid_until == datetime(2027, 6, 1, tzinfo=CEST)
    assert agreement.retention == timedelta(days=90)
    assert agreement.pseudonymise_fields == {"device_id"} and agreement.omit_fields == frozenset()


def test_a_family_target_covers_each_of_its_kinds() -> None:
    targets = _load(_sample("lru-energy-research")).targets
    assert targets.covers_kind("energy_reading")
    assert not targets.covers_kind("environment_reading") and not targets.covers_kind("bike_trip")
    assert not targets.covers_kind("no_such_kind")


def test_terms_may_be_written_with_full_iris() -> None:
    document = _changed(
        "yelo-mobility-planning",
        both(
            permission_setting("action", "http://www.w3.org/ns/odrl/2/use"),
            constraints(
                drop=("purpose",),
                add=(
                    _constraint(
                        "http://www.w3.org/ns/odrl/2/purpose",
                        "odrl:isAnyOf",
                        ["urn:zerocarbon:odrl:mobility-planning", "zc:network-operation"],
                    ),
                ),
            ),
        ),
    )
    assert _load(document).purposes == (Purpose.MOBILITY_PLANNING, Purpose.NETWORK_OPERATION)


def test_an_instant_may_be_a_plain_string_in_utc() -> None:
    document = _changed(
        "yelo-mobility-planning",
        constraints(drop=("dateTime",), add=(_constraint("dateTime", "gteq", "2026-06-01T00:00:00Z"),)),
    )
    agreement = _load(document)
    assert agreement.valid_from == datetime(2026, 6, 1, tzinfo=UTC) and agreement.valid_until is None


def test_an_aggregate_agreement_without_a_window_receives_hours_and_beyond() -> None:
    agreement = _load(_changed("region-territory-steering", constraints(drop=("zc:window",))))
    assert agreement.minimum_window == "1h"
    assert [w for w in WINDOW_ORDER if agreement.window_allowed(w)] == ["1h", "1d", "ytd"]


def test_the_public_may_also_be_given_a_retention() -> None:
    document = _changed("public-open-indicators", duties(add=(_delete_within("P30D"),)))
    assert _load(document).retention == timedelta(days=30)


# --- The version ------------------------------------------------------------------------


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.stem)
def test_the_version_is_the_sha256_of_the_canonical_json(path: Path) -> None:
    document = json.loads(path.read_text(encoding="utf-8"))
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    agreement = load_agreement_file(path, INDICATOR_NAMES)
    assert canonical_json(document) == canonical
    assert agreement.version == hashlib.sha256(canonical).hexdigest() == agreement_version(document)
    assert len(agreement.version) == 64 and agreement.short_version == agreement.version[:16]


def _reversed_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _reversed_keys(value[k]) for k in reversed(list(value))}
    if isinstance(value, list):
        return [_reversed_keys(v) for v in value]
    return value


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.stem)
def test_the_version_does_not_change_with_key_order_whitespace_or_escapes(tmp_path: Path, path: Path) -> None:
    original = load_agreement_file(path, INDICATOR_NAMES)
    rewritten = tmp_path / path.name
    document = _reversed_keys(json.loads(path.read_text(encoding="utf-8")))
    text = json.dumps(document, indent="\t", separators=(" ,", " :\t"), ensure_ascii=True)
    rewritten.write_text(f"\n\n{text}\n  ", encoding="utf-8")
    assert rewritten.read_text(encoding="utf-8") != path.read_text(encoding="utf-8")
    assert load_agreement_file(rewritten, INDICATOR_NAMES).version == original.version


TERM_CHANGES: dict[str, Mutation] = {
    "retention": duties(drop=("delete",), add=(_delete_within("P364D"),)),
    "end": constraints(
        drop=("dateTime lt",), add=(_constraint("dateTime", "lt", _instant("2028-12-31T00:00:00+01:00")),)
    ),
    "start offset": constraints(
        drop=("dateTime gteq",), add=(_constraint("dateTime", "gteq", _instant("2026-01-01T00:00:00+00:00")),)
    ),
    "producer": constraints(drop=("zc:producer",), add=(_constraint("zc:producer", "eq", "enedis"),)),
    "purpose": constraints(drop=("purpose",), add=(_constraint("purpose", "eq", "zc:energy-management"),)),
    "target": permission_setting(
        "target", ["urn:zerocarbon:family:energy", "urn:zerocarbon:family:environment"]
    ),
    "omitted field": duties(drop=("field",), add=(_field_duty("zc:omit", ["ingestion_time", "commune"]),)),
    "attribution": duties(drop=("attribute",), add=({"action": "attribute", "zc:attributionText": "LRU"},)),
    "assignee": setting("assignee", "urn:zerocarbon:party:lru-lab-2"),
    "title": setting("dct:title", "Another title"),
}


def test_any_change_of_a_term_makes_a_new_version() -> None:
    original = _load(_sample("lru-energy-research")).version
    versions = {
        name: _load(_changed("lru-energy-research", change)).version for name, change in TERM_CHANGES.items()
    }
    assert original not in versions.values()
    assert len(set(versions.values())) == len(versions)


# --- Refusals ---------------------------------------------------------------------------

LRU, PUBLIC, REGION, YELO = (
    "lru-energy-research",
    "public-open-indicators",
    "region-territory-steering",
    "yelo-mobility-planning",
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


def test_a_document_without_uid_is_named_so() -> None:
    error = _refusal(_changed(LRU, removing("uid")))
    assert (error.agreement, error.term) == ("(no uid)", "uid")


def test_a_document_that_is_not_an_object_is_refused() -> None:
    error = _refusal([_sample(LRU)])
    assert (error.agreement, error.term) == ("(unnamed)", "document")


def test_an_indicator_is_known_only_if_the_loader_is_given_it() -> None:
    document = _sample(PUBLIC)
    with pytest.raises(AgreementError) as caught:
        parse_agreement(document, INDICATOR_NAMES - {"passenger_km"})
    assert caught.value.term == "permission.target" and "passenger_km" in caught.value.problem


@pytest.mark.parametrize(("content", "problem"), [(b"{", "is not JSON"), (b"\xff\xfe{}", "cannot be read")])
def test_a_file_that_is_not_json_is_named_by_its_file_name(
    tmp_path: Path, content: bytes, problem: str
) -> None:
    path = tmp_path / "broken.jsonld"
    path.write_bytes(content)
    with pytest.raises(AgreementError) as caught:
        load_agreement_file(path, INDICATOR_NAMES)
    assert (caught.value.agreement, caught.value.term) == ("broken.jsonld", "file")
    assert problem in caught.value.problem


def test_a_missing_file_is_named_by_its_file_name(tmp_path: Path) -> None:
    with pytest.raises(AgreementError) as caught:
        load_agreement_file(tmp_path / "absent.jsonld", INDICATOR_NAMES)
    assert (caught.value.agreement, caught.value.term) == ("absent.jsonld", "file")


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


# --- Durations ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("P30D", timedelta(days=30)),
        ("P365D", timedelta(days=365)),
        ("P12W", timedelta(weeks=12)),
        ("PT6H", timedelta(hours=6)),
        ("PT90M", timedelta(minutes=90)),
        ("PT45S", timedelta(seconds=45)),
        ("P1DT12H", timedelta(days=1, hours=12)),
        ("P2W3DT4H5M6S", timedelta(weeks=2, days=3, hours=4, minutes=5, seconds=6)),
        ("P0D", timedelta(0)),
    ],
)
def test_a_duration_of_weeks_days_and_time_is_read(text: str, expected: timedelta) -> None:
    assert iso_duration(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "P1Y",
        "P6M",
        "P1Y2D",
        "P",
        "PT",
        "P1DT",
        "",
        "30D",
        "P1.5D",
        "PT0.5S",
        "-P1D",
        "p30d",
        "P1H",
        "PT1D",
        "P1D ",
        " P1D",
    ],
)
def test_a_duration_of_years_months_or_another_form_is_none(text: str) -> None:
    assert iso_duration(text) is None


@pytest.mark.parametrize("text", ["PT\n", "P1D\n", "P\u0663D"])
def test_only_the_ascii_iso_form_is_a_duration(text: str) -> None:
    assert iso_duration(text) is None


# --- Validity and windows -----------------------------------------------------------------


def test_an_agreement_is_active_from_its_start_inclusive_until_its_end_exclusive() -> None:
    agreement = _load(_sample(YELO))  # 2026-06-01T00:00+02:00 .. 2027-06-01T00:00+02:00
    second = timedelta(microseconds=1)
    start = datetime(2026, 5, 31, 22, tzinfo=UTC)
    end = datetime(2027, 5, 31, 22, tzinfo=UTC)
    assert not agreement.active(start - second)
    assert agreement.active(start)
    assert agreement.active(datetime(2026, 6, 1, tzinfo=CEST))
    assert agreement.active(end - second)
    assert not agreement.active(end)
    assert not agreement.active(end + timedelta(days=400))


def test_an_agreement_without_an_end_stays_active() -> None:
    agreement = _load(_sample(PUBLIC))
    assert not agreement.active(datetime(2025, 12, 31, 22, 59, 59, tzinfo=UTC))
    assert agreement.active(datetime(2025, 12, 31, 23, tzinfo=UTC))
    assert agreement.active(datetime(2999, 1, 1, tzinfo=UTC))


def test_the_minimum_window_allows_it_and_every_coarser_one() -> None:
    public = _load(_sample(PUBLIC))
    assert [w for w in WINDOW_ORDER if public.window_allowed(w)] == ["1d", "ytd"]
    region = _load(_sample(REGION))
    assert [w for w in WINDOW_ORDER if region.window_allowed(w)] == ["1h", "1d", "ytd"]
    finest = _load(
        _changed(REGION, constraints(drop=("zc:window",), add=(_constraint("zc:window", "gteq", "1m"),)))
    )
    assert all(finest.window_allowed(w) for w in WINDOW_ORDER)


@pytest.mark.parametrize("window", ["1w", "", "1D", "60m"])
def test_a_window_of_no_known_size_is_not_allowed(window: str) -> None:
    assert not _load(
        _changed(REGION, constraints(drop=("zc:window",), add=(_constraint("zc:window", "gteq", "1m"),)))
    ).window_allowed(window)


@pytest.mark.parametrize("stem", [LRU, YELO])
def test_an_event_agreement_allows_no_window(stem: str) -> None:
    agreement = _load(_sample(stem))
    assert agreement.minimum_window is None
    assert not any(agreement.window_allowed(w) for w in WINDOW_ORDER)
