"""What each party receives of one record: the agreements enforced on every message.

A pure engine with no I/O, like the worker's: given the agreements in force and a record of
``zc.valid.<family>`` (a JSON array of events) or of ``zc.indicators`` (one update), it
returns one release per agreement that allows any of it, already filtered, transformed and
suppressed, and tallies what it released for the audit. A record no agreement covers gives
nothing: the default is to share nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any

from pydantic_core import to_json

from sharing.agreement_terms import Detail
from sharing.agreements import Agreement
from sharing.event_kinds import KIND_FAMILY, kind_of
from sharing.personal_data import household_fields
from sharing.statistical_secrecy import CellStatus, cell_status

SHARE_PREFIX = "zc.share."
AGREEMENT_HEADER, VERSION_HEADER = "zc-agreement", "zc-agreement-version"


def party_topic(party: str) -> str:
    """The one topic a party may read."""
    return f"{SHARE_PREFIX}{party}"


@dataclass(frozen=True)
class Release:
    """One record for one party, and what it holds (for the audit)."""

    agreement: Agreement
    key: bytes | None
    value: bytes
    items: int  # events, or aggregate cells, in the record
    secret: int  # cells sent as secret
    first_time: datetime  # the earliest event time or window start it holds
    last_time: datetime

    @property
    def topic(self) -> str:
        return party_topic(self.agreement.party)

    @property
    def headers(self) -> list[tuple[str, bytes]]:
        return [
            (AGREEMENT_HEADER, self.agreement.uid.encode()),
            (VERSION_HEADER, self.agreement.version.encode()),
        ]


@dataclass
class ReleaseTally:
    """What one version of an agreement released since the last audit record."""

    records: int = 0
    items: int = 0
    secret: int = 0
    first_time: datetime | None = None
    last_time: datetime | None = None

    def add(self, release: Release) -> None:
        self.records += 1
        self.items += release.items
        self.secret += release.secret
        if self.first_time is None or release.first_time < self.first_time:
            self.first_time = release.first_time
        if self.last_time is None or release.last_time > self.last_time:
            self.last_time = release.last_time


Signature = tuple[frozenset[str], frozenset[str]]
"""What an agreement does to each event it shares: the fields it omits and pseudonymises.
Agreements with the same signature share one encoding of each event."""


@dataclass
class SharingEngine:
    """The agreements in force (by uid) and the pseudonyms of the current key."""

    pseudonymise: Callable[[str], str]
    tallies: dict[tuple[str, str], ReleaseTally] = field(
        default_factory=dict
    )  # (uid, version): taken by the audit

    def __post_init__(self) -> None:
        self._released_under: dict[tuple[str, str], Agreement] = {}
        self._agreements: dict[str, Agreement] = {}
        self._index()

    @property
    def agreements(self) -> Mapping[str, Agreement]:
        """The agreements held, by uid: changed through ``replace``, ``grant`` and ``revoke``
        only, which keep the index in step."""
        return MappingProxyType(self._agreements)

    def replace(self, agreements: Iterable[Agreement]) -> None:
        self._agreements = {a.uid: a for a in agreements}
        self._index()

    def grant(self, agreement: Agreement) -> None:
        self._agreements[agreement.uid] = agreement
        self._index()

    def revoke(self, uid: str) -> None:
        self._agreements.pop(uid, None)
        self._index()

    def _index(self) -> None:
        """The agreements by what they look at: event agreements with the kinds they cover, and
        aggregate agreements by indicator, so a record meets only those that may want it."""
        self._event_agreements = [
            (a, frozenset(k for k in KIND_FAMILY if a.targets.covers_kind(k)))
            for a in self.agreements.values()
            if not a.detail.is_aggregate
        ]
        by_indicator: dict[str, list[tuple[Agreement, bytes]]] = {}
        for a in self.agreements.values():
            if a.detail.is_aggregate:
                suffix = b',"attribution":' + to_json(a.attribution) + b"}"
                for name in a.targets.indicators:
                    by_indicator.setdefault(name, []).append((a, suffix))
        self._by_indicator = by_indicator

    def take_tallies(self) -> dict[tuple[str, str], tuple[Agreement, ReleaseTally]]:
        """What each agreement's version released since the last call (revoked since: kept)."""
        taken = {key: (self._released_under[key], tally) for key, tally in self.tallies.items()}
        self.tallies = {}
        self._released_under = {}
        return taken

    def events(self, family: str, events: list[dict[str, Any]], now: datetime) -> list[Release]:
        """One release per agreement in force that covers any of ``events``, in their order."""
        in_force = [(a, kinds) for a, kinds in self._event_agreements if a.active(now)]
        if not in_force:
            return []
        groups: dict[tuple[str, Any], list[int]] = {}
        for i, event in enumerate(events):
            groups.setdefault((kind_of(family, event), event.get("producer_id")), []).append(i)
        encoded: dict[Signature, list[bytes | None]] = {}
        bases: list[dict[str, Any] | None] = [None] * len(events)
        times: list[datetime | None] = [None] * len(events)
        releases = []
        for agreement, kinds in in_force:
            producers = agreement.producers
            chosen = [
                i
                for (kind, producer), members in groups.items()
                if kind in kinds and (producers is None or producer in producers)
                for i in members
            ]
            if not chosen:
                continue
            chosen.sort()
            signature = (agreement.omit_fields, agreement.pseudonymise_fields)
            cache = encoded.setdefault(signature, [None] * len(events))
            parts = []
            for i in chosen:
                part = cache[i]
                if part is None:
                    base = bases[i]
                    if base is None:
                        base = bases[i] = self._without_household_ids(family, events[i])
                    part = cache[i] = to_json(self._transformed(base, events[i], signature))
                parts.append(part)
            instants = [times[i] or _instant(times, i, events[i]) for i in chosen]
            value = b"[" + b",".join(parts) + b"]"
            releases.append(Release(agreement, None, value, len(chosen), 0, min(instants), max(instants)))
        # Tallied once every release is made: a call that fails half-way audits nothing.
        return [self._released(release) for release in releases]

    def wants_family(self, family: str) -> bool:
        """Whether an agreement on events may want a record of ``family`` (else: not parsed)."""
        return any(KIND_FAMILY[kind] == family for _, kinds in self._event_agreements for kind in kinds)

    def wants_indicator(self, name: str) -> bool:
        """Whether an agreement on aggregates targets ``name`` (else: the update is not parsed)."""
        return name in self._by_indicator

    def indicators(self, updates: list[dict[str, Any]], now: datetime) -> list[Release]:
        """One release per aggregate agreement that allows any of ``updates`` (their indicator,
        window and level): a JSON array of its cells, in the updates' order."""
        cells: dict[str, tuple[Agreement, list[bytes], list[int], list[datetime]]] = {}
        for update in updates:
            candidates = self._by_indicator.get(update.get("indicator"))  # type: ignore[arg-type]
            if not candidates:
                continue
            dimensions: dict[str, str] = update.get("dimensions") or {}
            window = str(update.get("window"))
            by_commune = "commune" in dimensions
            head: bytes | None = None
            secret = 0
            start = _parsed(update["window_start"])
            for agreement, attribution in candidates:
                if not agreement.window_allowed(window) or not agreement.active(now):
                    continue
                if by_commune and agreement.detail is Detail.TERRITORY_AGGREGATES:
                    continue
                if head is None:
                    status = cell_status(str(update["indicator"]), dimensions)
                    secret = int(status is CellStatus.SECRET)
                    head = to_json(_cell(update, dimensions, status))[:-1]
                parts, secrets, starts = cells.setdefault(agreement.uid, (agreement, [], [], []))[1:]
                parts.append(head + attribution)
                secrets.append(secret)
                starts.append(start)
        return [
            self._released(
                Release(
                    a,
                    None,
                    b"[" + b",".join(parts) + b"]",
                    len(parts),
                    sum(secrets),
                    min(starts),
                    max(starts),
                )
            )
            for a, parts, secrets, starts in cells.values()
        ]

    def _without_household_ids(self, family: str, event: dict[str, Any]) -> dict[str, Any]:
        """The event with a household's ids as pseudonyms (the event itself if it has none)."""
        fields = household_fields(family, event)
        if not fields:
            return event
        return {name: self._pseudonym(value) if name in fields else value for name, value in event.items()}

    def _transformed(
        self, base: dict[str, Any], event: dict[str, Any], signature: Signature
    ) -> dict[str, Any]:
        """``base`` as an agreement of ``signature`` shares it; ``event`` is its original (a
        field already pseudonymised in ``base`` is not pseudonymised twice)."""
        omit, pseudonymise = signature
        if not omit and not pseudonymise:
            return base
        shared = base.copy()
        for name in omit:
            shared.pop(name, None)
        for name in pseudonymise:
            value = shared.get(name)
            if value is not None and value is event.get(name):
                shared[name] = self._pseudonym(value)
        return shared

    def _pseudonym(self, value: Any) -> str:
        """A number or an object is as identifying as a text: pseudonymised as its JSON."""
        return self.pseudonymise(value if isinstance(value, str) else to_json(value).decode())

    def _released(self, release: Release) -> Release:
        key = (release.agreement.uid, release.agreement.version)
        self.tallies.setdefault(key, ReleaseTally()).add(release)
        self._released_under[key] = release.agreement
        return release


def _cell(update: dict[str, Any], dimensions: dict[str, str], status: CellStatus) -> dict[str, Any]:
    """An aggregate cell as parties receive it; a secret one has no value, never a 0."""
    return {
        "indicator": update["indicator"],
        "unit": update.get("unit"),
        "window": update["window"],
        "window_start": update["window_start"],
        "window_end": update.get("window_end"),
        "dimensions": dimensions,
        "value": update.get("value") if status is CellStatus.PUBLISHED else None,
        "status": status.value,
        "final": update.get("final", False),
        "revision": update.get("revision", 0),
    }


def _parsed(text: Any) -> datetime:
    return datetime.fromisoformat(str(text).replace("Z", "+00:00"))


def _instant(times: list[datetime | None], i: int, event: dict[str, Any]) -> datetime:
    instant = times[i] = _parsed(event["event_time"])
    return instant
