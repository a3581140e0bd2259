"""The agreement tests' shared material: the shipped samples, and changes of one term to them, so that
each test shows only the term it is about."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from sharing.agreements import Agreement, AgreementError, parse_agreement
from sinks.territory_rollup import OURS
from streams.indicators.catalogue import INDICATORS

SAMPLES_DIR = Path(__file__).resolve().parents[2] / "sharing" / "sample_agreements"
SAMPLES = sorted(SAMPLES_DIR.glob("*.jsonld"))
INDICATOR_NAMES = set(INDICATORS) | set(OURS)
CET, CEST = timezone(timedelta(hours=1)), timezone(timedelta(hours=2))

Document = dict[str, Any]
Mutation = Callable[[Document], None]

LRU, PUBLIC, REGION, YELO = (
    "lru-energy-research",
    "public-open-indicators",
    "region-territory-steering",
    "yelo-mobility-planning",
)


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
