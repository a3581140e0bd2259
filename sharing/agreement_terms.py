"""The words of the platform's ODRL 2.2 profile: what an agreement's terms may say.

An agreement is W3C ODRL 2.2 in JSON-LD (docs/sharing.md). ODRL brings the structure (a
permission on targets, constraints, duties) and its common vocabulary (``purpose``,
``dateTime``, ``elapsedTime``; ``use``, ``attribute``, ``delete``, ``anonymize``); this
profile adds the few words ODRL leaves to profiles, under ``urn:zerocarbon:odrl:``, and
fixes which of them an agreement must, may and may not hold. Keeping the vocabulary closed
is what lets a loader refuse an agreement it would otherwise misread as granting more.
"""

from __future__ import annotations

from enum import StrEnum

PROFILE = "urn:zerocarbon:odrl:profile:1"
ODRL_CONTEXT = "http://www.w3.org/ns/odrl.jsonld"
ZC = "urn:zerocarbon:odrl:"
"""The prefix of this profile's own terms (``zc:`` in the documents' JSON-LD context)."""

AGREEMENT_PREFIX = "urn:zerocarbon:agreement:"
PARTY_PREFIX = "urn:zerocarbon:party:"
PUBLIC_PARTY = "public"
"""The party of open data: anyone; only aggregates may be granted to it."""

TARGET_PREFIXES = {
    "family": "urn:zerocarbon:family:",
    "kind": "urn:zerocarbon:kind:",
    "indicator": "urn:zerocarbon:indicator:",
}
"""A target names a family of events, one kind of event, or an indicator."""


class Detail(StrEnum):
    """How fine what a party receives is (``zc:detail``)."""

    PSEUDONYMISED_EVENTS = "pseudonymised-events"
    COMMUNE_AGGREGATES = "commune-aggregates"
    TERRITORY_AGGREGATES = "territory-aggregates"

    @property
    def is_aggregate(self) -> bool:
        return self is not Detail.PSEUDONYMISED_EVENTS


class Purpose(StrEnum):
    """Why a party may use what it receives (``purpose``); docs/sharing.md maps each to W3C DPV."""

    TERRITORIAL_STEERING = "territorial-steering"
    PUBLIC_INFORMATION = "public-information"
    SCIENTIFIC_RESEARCH = "scientific-research"
    ENERGY_MANAGEMENT = "energy-management"
    MOBILITY_PLANNING = "mobility-planning"
    NETWORK_OPERATION = "network-operation"


EVENT_PURPOSES = frozenset(
    {
        Purpose.SCIENTIFIC_RESEARCH,
        Purpose.ENERGY_MANAGEMENT,
        Purpose.NETWORK_OPERATION,
        Purpose.MOBILITY_PLANNING,
    }
)
"""The purposes for which events (pseudonymised) may be shared: the others are served by aggregates."""

WINDOW_ORDER = ("1m", "15m", "1h", "1d", "1mo", "ytd")
"""Window sizes from the finest; ``zc:window`` ``gteq`` one of them sets an agreement's finest."""

DEFAULT_MINIMUM_WINDOW = "1h"

PERMISSION_ACTION = "use"
DUTY_ATTRIBUTE, DUTY_DELETE, DUTY_ANONYMIZE = "attribute", "delete", "anonymize"
DUTY_OMIT = "zc:omit"
"""A profile action: the party receives events without the fields it names."""

LEFT_PURPOSE, LEFT_DATETIME, LEFT_ELAPSED = "purpose", "dateTime", "elapsedTime"
LEFT_DETAIL, LEFT_PRODUCER, LEFT_WINDOW, LEFT_FIELD = "zc:detail", "zc:producer", "zc:window", "zc:field"
ATTRIBUTION_TEXT = "zc:attributionText"


def compact(term: str) -> str:
    """``term`` with this profile's or ODRL's full IRI written short, as the loader compares it."""
    for full, short in ((ZC, "zc:"), ("http://www.w3.org/ns/odrl/2/", ""), ("odrl:", "")):
        if term.startswith(full):
            return short + term[len(full) :]
    return term
