"""Data-use agreements: an ODRL 2.2 document read into the terms the sharing stage enforces.

The loader is strict on purpose: a term it does not know, a constraint on an operand it does
not enforce, a second permission or a prohibition is refused with an error naming the
agreement and the term, because reading past it would grant what the producer did not mean
to grant. An agreement that fails to load grants nothing. Its version is the SHA-256 of its
canonical JSON, so any change of a term makes a new version that every release then names.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sharing.agreement_terms import (
    AGREEMENT_PREFIX,
    ATTRIBUTION_TEXT,
    DEFAULT_MINIMUM_WINDOW,
    DUTY_ANONYMIZE,
    DUTY_ATTRIBUTE,
    DUTY_DELETE,
    DUTY_OMIT,
    EVENT_PURPOSES,
    LEFT_DATETIME,
    LEFT_DETAIL,
    LEFT_ELAPSED,
    LEFT_FIELD,
    LEFT_PRODUCER,
    LEFT_PURPOSE,
    LEFT_WINDOW,
    ODRL_CONTEXT,
    PARTY_PREFIX,
    PERMISSION_ACTION,
    PROFILE,
    PUBLIC_PARTY,
    TARGET_PREFIXES,
    WINDOW_ORDER,
    ZC,
    Detail,
    Purpose,
    compact,
)
from sharing.event_kinds import KIND_FAMILY, KIND_FIELDS
from sharing.iso_durations import iso_duration

TOP_LEVEL = frozenset(
    {"@context", "@type", "uid", "profile", "assigner", "assignee", "permission", "dct:title"}
)
PERMISSION_KEYS = frozenset({"target", "action", "constraint", "duty"})
NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,99}")  # always fullmatch: "$" lets a final newline in
PRODUCER = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:\-]{0,127}")  # the envelope's producer_id


class AgreementError(ValueError):
    """An agreement refused: which one, which term, and what is wrong with it."""

    def __init__(self, agreement: str, term: str, problem: str) -> None:
        super().__init__(f"agreement {agreement}: {term}: {problem}")
        self.agreement, self.term, self.problem = agreement, term, problem


@dataclass(frozen=True)
class Targets:
    """What an agreement covers: whole families, single kinds of events, or indicators."""

    families: frozenset[str] = frozenset()
    kinds: frozenset[str] = frozenset()
    indicators: frozenset[str] = frozenset()

    def covers_kind(self, kind: str) -> bool:
        return kind in self.kinds or KIND_FAMILY.get(kind) in self.families


@dataclass(frozen=True)
class Agreement:
    """One agreement's enforced terms; ``document`` is what was granted, verbatim."""

    uid: str
    version: str  # sha256 of the canonical document, hex
    assigner: str
    party: str  # a Kafka principal's name, or "public"
    targets: Targets
    producers: frozenset[str] | None  # None: any producer
    purposes: tuple[Purpose, ...]
    detail: Detail
    minimum_window: str | None  # aggregates: the finest window size the party receives
    valid_from: datetime
    valid_until: datetime | None
    retention: timedelta | None  # how long the party may keep its copy (None: open data, no limit)
    omit_fields: frozenset[str]
    pseudonymise_fields: frozenset[str]
    attribution: str
    document: dict[str, Any]

    @property
    def name(self) -> str:
        """The uid without its prefix: how commands and headers name the agreement."""
        return self.uid.removeprefix(AGREEMENT_PREFIX)

    @property
    def short_version(self) -> str:
        return self.version[:16]

    def active(self, now: datetime) -> bool:
        return self.valid_from <= now and (self.valid_until is None or now < self.valid_until)

    def window_allowed(self, window: str) -> bool:
        if self.minimum_window is None or window not in WINDOW_ORDER:
            return False
        return WINDOW_ORDER.index(window) >= WINDOW_ORDER.index(self.minimum_window)


def canonical_json(document: dict[str, Any]) -> bytes:
    """The bytes an agreement's version is the hash of: keys sorted, no spaces, UTF-8."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def agreement_version(document: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json(document)).hexdigest()


def load_agreement_file(path: Path, indicators: Iterable[str]) -> Agreement:
    """The agreement in the JSON-LD file ``path``; AgreementError names what is wrong."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise AgreementError(path.name, "file", f"cannot be read: {exc}") from None
    except json.JSONDecodeError as exc:
        raise AgreementError(path.name, "file", f"is not JSON: {exc}") from None
    return parse_agreement(document, indicators)


def parse_agreement(document: Any, indicators: Iterable[str]) -> Agreement:
    """The terms of an ODRL agreement of this profile; ``indicators``: the names it may target."""
    if not isinstance(document, dict):
        raise AgreementError("(unnamed)", "document", "an agreement is a JSON object")
    uid = document.get("uid")
    label = uid if isinstance(uid, str) and uid else "(no uid)"
    reader = _Reader(label, frozenset(indicators))
    return reader.agreement(document)


class _Reader:
    """Reads one document; every refusal names ``label`` and the term."""

    def __init__(self, label: str, indicators: frozenset[str]) -> None:
        self.label, self.indicators = label, indicators

    def fail(self, term: str, problem: str) -> AgreementError:
        return AgreementError(self.label, term, problem)

    def agreement(self, doc: dict[str, Any]) -> Agreement:
        if unknown := sorted(set(doc) - TOP_LEVEL):
            hint = " (everything not permitted is prohibited)" if "prohibition" in unknown else ""
            raise self.fail(
                str(unknown[0]), f"is not a term of this profile{hint}; it knows {sorted(TOP_LEVEL)}"
            )
        self._context(doc.get("@context"))
        if doc.get("@type") != "Agreement":
            raise self.fail("@type", f"must be 'Agreement', not {doc.get('@type')!r}")
        if doc.get("profile") != PROFILE:
            raise self.fail("profile", f"must be {PROFILE!r}, not {doc.get('profile')!r}")
        uid = doc.get("uid")
        if (
            not isinstance(uid, str)
            or not NAME.fullmatch(uid.removeprefix(AGREEMENT_PREFIX))
            or uid == AGREEMENT_PREFIX
        ):
            raise self.fail("uid", f"must be {AGREEMENT_PREFIX}<name>, a name of a-z, 0-9, '.', '_', '-'")
        if not uid.startswith(AGREEMENT_PREFIX):
            raise self.fail("uid", f"must start with {AGREEMENT_PREFIX}")
        assigner = self._party(doc.get("assigner"), "assigner")
        party = self._party(doc.get("assignee"), "assignee")
        permissions = doc.get("permission")
        if not isinstance(permissions, list) or len(permissions) != 1 or not isinstance(permissions[0], dict):
            raise self.fail("permission", "this profile holds exactly one permission (a list of one object)")
        return self._permission(permissions[0], doc, uid, assigner, party)

    def _context(self, context: Any) -> None:
        """ODRL's context and the zc prefix, nothing else: a context may rename any term (map
        "permission" to odrl:prohibition), which this loader, reading plain JSON, would miss."""
        items = context if isinstance(context, list) else [context]
        if ODRL_CONTEXT not in items:
            raise self.fail("@context", f"must include ODRL's context {ODRL_CONTEXT!r}")
        for item in items:
            if item != ODRL_CONTEXT and item != {"zc": ZC}:
                raise self.fail("@context", f"holds ODRL's context and {{'zc': {ZC!r}}} only, not {item!r}")

    def _party(self, value: Any, term: str) -> str:
        if not isinstance(value, str) or not value.startswith(PARTY_PREFIX):
            raise self.fail(term, f"must be {PARTY_PREFIX}<name> (a Kafka principal) or {PARTY_PREFIX}public")
        name = value.removeprefix(PARTY_PREFIX)
        if not NAME.fullmatch(name):
            raise self.fail(term, f"{name!r} is not a party name (a-z, 0-9, '.', '_', '-')")
        return name

    def _permission(
        self, permission: dict[str, Any], doc: dict[str, Any], uid: str, assigner: str, party: str
    ) -> Agreement:
        if unknown := sorted(set(permission) - PERMISSION_KEYS):
            raise self.fail(
                f"permission.{unknown[0]}",
                f"is not a term of this profile's permission: {sorted(PERMISSION_KEYS)}",
            )
        if compact(str(permission.get("action"))) != PERMISSION_ACTION:
            raise self.fail(
                "permission.action", f"must be {PERMISSION_ACTION!r} (the party uses what it receives)"
            )
        targets = self._targets(permission.get("target"))
        terms = self._constraints(permission.get("constraint"))
        detail = terms.pop(LEFT_DETAIL, None)
        if not isinstance(detail, Detail):
            raise self.fail("constraint zc:detail", f"is required: one of {[d.value for d in Detail]}")
        purposes = terms.pop(LEFT_PURPOSE, None)
        if not purposes:
            raise self.fail("constraint purpose", f"is required: any of {[p.value for p in Purpose]}")
        valid_from = terms.pop("from", None)
        if valid_from is None:
            raise self.fail("constraint dateTime", "an agreement needs a start: dateTime gteq <instant>")
        valid_until = terms.pop("until", None)
        if valid_until is not None and valid_until <= valid_from:
            raise self.fail("constraint dateTime", "its end (lt) must come after its start (gteq)")
        window = terms.pop(LEFT_WINDOW, None)
        duties = self._duties(permission.get("duty"), party)
        agreement = Agreement(
            uid=uid,
            version=agreement_version(doc),
            assigner=assigner,
            party=party,
            targets=targets,
            producers=terms.pop(LEFT_PRODUCER, None),
            purposes=purposes,
            detail=detail,
            minimum_window=(window or DEFAULT_MINIMUM_WINDOW) if detail.is_aggregate else None,
            valid_from=valid_from,
            valid_until=valid_until,
            retention=duties.retention,
            omit_fields=duties.omit,
            pseudonymise_fields=duties.pseudonymise,
            attribution=duties.attribution,
            document=copy.deepcopy(doc),  # what was granted, whatever the caller does with its dict
        )
        self._coherent(agreement, window)
        return agreement

    def _targets(self, value: Any) -> Targets:
        items = value if isinstance(value, list) else [value]
        found: dict[str, set[str]] = {kind: set() for kind in TARGET_PREFIXES}
        for item in items:
            if not isinstance(item, str):
                raise self.fail("permission.target", "each target is an IRI string")
            kind = next((k for k, prefix in TARGET_PREFIXES.items() if item.startswith(prefix)), None)
            if kind is None:
                raise self.fail(
                    "permission.target",
                    f"{item!r} names no family, kind or indicator ({sorted(TARGET_PREFIXES.values())})",
                )
            name = item.removeprefix(TARGET_PREFIXES[kind])
            known = {
                "family": set(KIND_FAMILY.values()),
                "kind": set(KIND_FAMILY),
                "indicator": self.indicators,
            }[kind]
            if name not in known:
                raise self.fail("permission.target", f"{item!r}: no {kind} {name!r}; known: {sorted(known)}")
            found[kind].add(name)
        if not any(found.values()):
            raise self.fail("permission.target", "an agreement needs at least one target")
        return Targets(frozenset(found["family"]), frozenset(found["kind"]), frozenset(found["indicator"]))

    def _constraints(self, value: Any) -> dict[str, Any]:
        if not isinstance(value, list):
            raise self.fail(
                "permission.constraint",
                "is a list of constraints (purpose, dateTime, zc:detail are required)",
            )
        terms: dict[str, Any] = {}
        for constraint in value:
            left, operator, right = self._triple(constraint, "permission.constraint")
            key = {("dateTime", "gteq"): "from", ("dateTime", "lt"): "until"}.get((left, operator), left)
            if key in terms:
                raise self.fail(f"constraint {left}", f"given twice (operator {operator})")
            terms[key] = self._operand(left, operator, right)
        return terms

    def _triple(self, constraint: Any, where: str) -> tuple[str, str, Any]:
        if not isinstance(constraint, dict) or set(constraint) != {"leftOperand", "operator", "rightOperand"}:
            raise self.fail(where, "each constraint is {leftOperand, operator, rightOperand}, nothing else")
        return (
            compact(str(constraint["leftOperand"])),
            compact(str(constraint["operator"])),
            constraint["rightOperand"],
        )

    def _operand(self, left: str, operator: str, right: Any) -> Any:
        term = f"constraint {left}"
        if left == LEFT_PURPOSE and operator in ("eq", "isAnyOf"):
            purposes = (
                self._member(Purpose, v.removeprefix("zc:"), term)
                for v in self._strings(right, term, operator)
            )
            return tuple(dict.fromkeys(purposes))
        if left == LEFT_DETAIL and operator == "eq":
            return self._member(Detail, self._one_string(right, term).removeprefix("zc:"), term)
        if left == LEFT_PRODUCER and operator in ("eq", "isAnyOf"):
            producers = frozenset(self._strings(right, term, operator))
            if bad := sorted(p for p in producers if not PRODUCER.fullmatch(p)):
                raise self.fail(term, f"{bad[0]!r} cannot be a producer_id (letters, digits, '_.:-')")
            return producers
        if left == LEFT_WINDOW and operator == "gteq":
            window = self._one_string(right, term)
            if window not in WINDOW_ORDER:
                raise self.fail(term, f"{window!r} is not a window size: {list(WINDOW_ORDER)}")
            return window
        if left == LEFT_DATETIME and operator in ("gteq", "lt"):
            return self._instant(right, term)
        expected = (
            "purpose eq|isAnyOf, dateTime gteq|lt, zc:detail eq, zc:producer eq|isAnyOf, zc:window gteq"
        )
        raise self.fail(
            term, f"operator {operator!r} on {left!r} is not enforced here; this profile knows: {expected}"
        )

    def _strings(self, right: Any, term: str, operator: str) -> list[str]:
        values = right if isinstance(right, list) and operator == "isAnyOf" else [right]
        if not values or not all(isinstance(v, str) and v for v in values):
            raise self.fail(term, "eq takes one string, isAnyOf a non-empty list of strings")
        return [compact(v) for v in values]

    def _one_string(self, right: Any, term: str) -> str:
        if not isinstance(right, str):
            raise self.fail(term, "takes one string")
        return compact(right)

    def _member(self, enum: type[Any], value: str, term: str) -> Any:
        try:
            return enum(value)
        except ValueError:
            raise self.fail(term, f"{value!r} is not one of {[m.value for m in enum]}") from None

    def _instant(self, right: Any, term: str) -> datetime:
        text = right.get("@value") if isinstance(right, dict) else right
        try:
            instant = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
        except ValueError:
            instant = None
        if instant is None or instant.tzinfo is None:
            raise self.fail(term, f"{text!r} is not an instant with its offset (2027-01-01T00:00:00+01:00)")
        return instant

    def _duties(self, value: Any, party: str) -> _Duties:
        duties = _Duties()
        if not isinstance(value, list):
            raise self.fail(
                "permission.duty", "is a list of duties (attribute and, for a named party, delete)"
            )
        for duty in value:
            if not isinstance(duty, dict):
                raise self.fail("permission.duty", "each duty is an object")
            action = duty.get("action")
            if isinstance(action, list) and len(action) == 1 and isinstance(action[0], dict):
                self._field_duty(action[0], duty, duties)
            elif compact(str(action)) == DUTY_ATTRIBUTE:
                text = duty.get(ATTRIBUTION_TEXT)
                if not isinstance(text, str) or not text.strip() or set(duty) - {"action", ATTRIBUTION_TEXT}:
                    raise self.fail(
                        "duty attribute", f"needs {ATTRIBUTION_TEXT}: the text every release carries"
                    )
                if duties.attribution:
                    raise self.fail("duty attribute", "given twice")
                duties.attribution = text.strip()
            elif compact(str(action)) == DUTY_DELETE:
                if duties.retention is not None:
                    raise self.fail("duty delete", "given twice")
                duties.retention = self._retention(duty)
            else:
                raise self.fail(
                    "permission.duty",
                    f"action {action!r} is not one of attribute, delete, anonymize, zc:omit",
                )
        if not duties.attribution:
            raise self.fail("duty attribute", "is required: what the party must cite")
        if duties.retention is None and party != PUBLIC_PARTY:
            raise self.fail(
                "duty delete",
                "is required: elapsedTime lteq <ISO 8601 duration> (how long the party keeps its copy)",
            )
        return duties

    def _field_duty(self, action: dict[str, Any], duty: dict[str, Any], duties: _Duties) -> None:
        value = action.get("rdf:value")
        name = compact(str(value.get("@id") if isinstance(value, dict) else value))
        if (
            set(duty) != {"action"}
            or set(action) != {"rdf:value", "refinement"}
            or name not in (DUTY_ANONYMIZE, DUTY_OMIT)
        ):
            raise self.fail(
                "permission.duty",
                "a field duty is action [{rdf:value: anonymize|zc:omit, "
                "refinement: [zc:field isAnyOf [...]]}]",
            )
        refinements = action["refinement"]
        if not isinstance(refinements, list) or len(refinements) != 1:
            raise self.fail(f"duty {name}", "takes one refinement: zc:field isAnyOf [field, ...]")
        left, operator, right = self._triple(refinements[0], f"duty {name}")
        if left != LEFT_FIELD or operator != "isAnyOf":
            raise self.fail(f"duty {name}", "its refinement is zc:field isAnyOf [field, ...]")
        fields = frozenset(self._strings(right, f"duty {name}", operator))
        if name == DUTY_OMIT:
            duties.omit |= fields
        else:
            duties.pseudonymise |= fields

    def _retention(self, duty: dict[str, Any]) -> timedelta:
        constraints = duty.get("constraint")
        if (
            set(duty) != {"action", "constraint"}
            or not isinstance(constraints, list)
            or len(constraints) != 1
        ):
            raise self.fail("duty delete", "takes one constraint: elapsedTime lteq <ISO 8601 duration>")
        left, operator, right = self._triple(constraints[0], "duty delete")
        text = right.get("@value") if isinstance(right, dict) else right
        if left != LEFT_ELAPSED or operator != "lteq":
            raise self.fail("duty delete", "its constraint is elapsedTime lteq <duration>")
        retention = iso_duration(str(text))
        if retention is None or retention <= timedelta(0):
            raise self.fail(
                "duty delete",
                f"{text!r} is not a positive duration, at most a century, in weeks, days, hours (P30D, PT6H)",
            )
        return retention

    def _coherent(self, agreement: Agreement, window: str | None) -> None:
        """Terms that each make sense alone but not together."""
        detail, targets = agreement.detail, agreement.targets
        if detail.is_aggregate:
            if targets.families or targets.kinds:
                raise self.fail(
                    "permission.target", f"{detail.value} targets indicators, not families or kinds of events"
                )
            if agreement.omit_fields or agreement.pseudonymise_fields:
                raise self.fail(
                    "permission.duty", "field duties apply to events; aggregates carry no device field"
                )
            if agreement.producers is not None:
                raise self.fail(
                    "constraint zc:producer", "aggregates mix producers: target events to choose producers"
                )
            return
        if agreement.party == PUBLIC_PARTY:
            raise self.fail("assignee", "the public receives aggregates only, never events")
        if targets.indicators:
            raise self.fail(
                "permission.target", "pseudonymised-events targets families or kinds, not indicators"
            )
        if window is not None:
            raise self.fail("constraint zc:window", "applies to aggregates")
        if not set(agreement.purposes) <= EVENT_PURPOSES:
            allowed = sorted(p.value for p in EVENT_PURPOSES)
            raise self.fail(
                "constraint purpose", f"events are shared only for {allowed}; use aggregates for the others"
            )
        kinds = {k for k in KIND_FAMILY if targets.covers_kind(k)}
        visible = frozenset().union(*(KIND_FIELDS[k] for k in kinds))
        for field in sorted(agreement.omit_fields | agreement.pseudonymise_fields):
            if field not in visible:
                raise self.fail(
                    "permission.duty", f"field {field!r} is in none of the targeted kinds ({sorted(kinds)})"
                )
        if overlap := agreement.omit_fields & agreement.pseudonymise_fields:
            raise self.fail("permission.duty", f"{sorted(overlap)} both omitted and pseudonymised")


@dataclass
class _Duties:
    attribution: str = ""
    retention: timedelta | None = None
    omit: frozenset[str] = frozenset()
    pseudonymise: frozenset[str] = frozenset()
