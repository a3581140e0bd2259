"""Data-use agreements written as documents of the profile (docs/sharing.md), for the tests
that grant them: the unit tests of the engine and the integration test of the stage."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sharing.agreement_terms import Detail, Purpose


def agreement_document(
    name: str,
    *,
    party: str,
    detail: Detail,
    targets: list[str],
    purposes: list[Purpose],
    start: datetime,
    end: datetime | None = None,
    producers: list[str] | None = None,
    window: str | None = None,
    retention: str | None = "P30D",
    omit: Iterable[str] = (),
    anonymize: Iterable[str] = (),
    attribution: str | None = None,
) -> dict[str, Any]:
    """An ODRL agreement of the profile, written as the samples are."""

    def constraint(left: str, operator: str, right: Any) -> dict[str, Any]:
        return {"leftOperand": left, "operator": operator, "rightOperand": right}

    constraints = [
        constraint("purpose", "isAnyOf", [f"zc:{p.value}" for p in purposes]),
        constraint("zc:detail", "eq", f"zc:{detail.value}"),
        constraint("dateTime", "gteq", {"@value": start.isoformat(), "@type": "xsd:dateTime"}),
    ]
    if end is not None:
        constraints.append(constraint("dateTime", "lt", {"@value": end.isoformat(), "@type": "xsd:dateTime"}))
    if producers is not None:
        one = len(producers) == 1
        constraints.append(
            constraint("zc:producer", "eq" if one else "isAnyOf", producers[0] if one else producers)
        )
    if window is not None:
        constraints.append(constraint("zc:window", "gteq", window))
    duties: list[dict[str, Any]] = [
        {"action": "attribute", "zc:attributionText": attribution or f"Données : {name}"}
    ]
    if retention is not None:
        duties.append({"action": "delete", "constraint": [constraint("elapsedTime", "lteq", retention)]})
    for action, fields in (("odrl:anonymize", sorted(anonymize)), ("zc:omit", sorted(omit))):
        if fields:
            refinement = [constraint("zc:field", "isAnyOf", fields)]
            duties.append({"action": [{"rdf:value": {"@id": action}, "refinement": refinement}]})
    return {
        "@context": ["http://www.w3.org/ns/odrl.jsonld", {"zc": "urn:zerocarbon:odrl:"}],
        "@type": "Agreement",
        "uid": f"urn:zerocarbon:agreement:{name}",
        "profile": "urn:zerocarbon:odrl:profile:1",
        "assigner": "urn:zerocarbon:party:cda-lr",
        "assignee": f"urn:zerocarbon:party:{party}",
        "permission": [{"target": targets, "action": "use", "constraint": constraints, "duty": duties}],
    }
