"""The sharing engine (sharing/sharing_engine.py): what each party receives of a record, under
random agreements of the profile, random events of the three families and random batches of
indicator updates, and under the four shipped agreements.

What is proven: a release is made only under an agreement the engine holds, in force at the
moment, and holds only what that agreement covers (kind or family, producer; for aggregates
the indicator, a window at least its finest, no commune cell at territory detail); what no
agreement in force covers is not released at all, and a record the engine says it does not
want (the stage then skips it unparsed) would have released nothing; a household meter's id
and event id never leave in clear, only as the keyed pseudonym; omitted fields are absent,
pseudonymised ones are pseudonyms whatever their type; a secret cell goes out null (never 0)
and a published one with its value; a revoked or ended agreement releases nothing; the
tallies the audit takes add up to exactly the releases made, per agreement version, and are
empty once taken.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from schemas.energy import EnergyReading
from schemas.environment import UNIT_OF, EnvironmentReading, EnvQuantity
from schemas.indicator import IndicatorUpdate
from schemas.mobility import MOBILITY_ADAPTER
from sharing.agreement_terms import EVENT_PURPOSES, WINDOW_ORDER, Detail, Purpose
from sharing.agreements import Agreement, AgreementError, load_agreement_file, parse_agreement
from sharing.event_kinds import KIND_FAMILY, KIND_FIELDS
from sharing.pseudonyms import Pseudonymiser, PseudonymKeys
from sharing.sharing_engine import AGREEMENT_HEADER, VERSION_HEADER, Release, SharingEngine, party_topic
from sharing.statistical_secrecy import METERED_ENERGY
from sinks.territory_rollup import OURS
from streams.indicators.catalogue import INDICATORS
from tests.agreement_documents import agreement_document

Event = dict[str, Any]
Update = dict[str, Any]
Record = tuple[str, list[Event]]

INDICATOR_NAMES = frozenset(INDICATORS) | frozenset(OURS)
KEYS = PseudonymKeys(1, {1: bytes(range(32))})
PSEUDONYM = re.compile(r"^ps1:[0-9a-f]{32}$")
SAMPLES_DIR = Path(__file__).resolve().parents[2] / "sharing" / "sample_agreements"

FAMILIES = ("energy", "environment", "mobility")
MOBILITY_KINDS = sorted(kind for kind, family in KIND_FAMILY.items() if family == "mobility")
SECTORS = ("residential", "tertiary", "industry", "public", "agriculture", "transport")
HOUSEHOLD_FIELDS = frozenset({"meter_id", "event_id"})
PRODUCERS = ("enedis", "grdf", "yelo", "atmo", "citiz")
PARTIES = ("lru-lab", "yelo-operator", "regional-observatory", "public")
COMMUNES = ("17300", "17000", "17028")
ZONES = (UTC, timezone(timedelta(hours=1)), timezone(timedelta(hours=-4)))
# The agreements, events and instants of the properties fall around these 72 hours, so that
# agreements start, end, and overlap during them.
T0 = datetime(2026, 3, 1, tzinfo=UTC)
HOURS = 72
NOWS = st.integers(-6 * 60, (HOURS + 12) * 60).map(lambda minutes: T0 + timedelta(minutes=minutes))

EXAMPLES = settings(max_examples=150, deadline=None)
MORE_EXAMPLES = settings(max_examples=200, deadline=None)  # where most examples release nothing


def _engine(agreements: Iterable[Agreement]) -> SharingEngine:
    engine = SharingEngine(Pseudonymiser(KEYS))
    engine.replace(agreements)
    return engine


def _instant(at: datetime) -> str:
    """As the validated topics write an instant: UTC, whole seconds, Z."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- Agreements -------------------------------------------------------------------------


def _parsed(document: dict[str, Any]) -> Agreement | None:
    try:
        return parse_agreement(document, INDICATOR_NAMES)
    except AgreementError:
        return None


@st.composite
def agreements(
    draw: st.DrawFn, name: str, detail: Detail | None = None, family: str | None = None, always: bool = False
) -> Agreement | None:
    """A random agreement named ``name``, or None when the loader refuses it (events granted
    to the public). ``detail``, ``family``: forced; ``always``: in force at every instant drawn."""
    detail = detail or draw(st.sampled_from(list(Detail)))
    # Events granted to the public are refused: drawn less often, so that fewer draws are lost.
    named = st.sampled_from([p for p in PARTIES if p != "public"])
    party = draw(st.sampled_from(PARTIES) | (st.just("public") if detail.is_aggregate else named))
    zone = draw(st.sampled_from(ZONES))
    start_hour = -7 if always else draw(st.just(-7) | st.integers(-6, HOURS))
    start = (T0 + timedelta(hours=start_hour)).astimezone(zone)
    end = (
        None if always else draw(st.none() | st.integers(1, HOURS).map(lambda h: start + timedelta(hours=h)))
    )
    retentions = st.sampled_from(["P30D", "PT6H", "P12W", "P1DT12H"])
    retention = draw(retentions | st.none() if party == "public" else retentions)
    if detail.is_aggregate:
        indicators = draw(st.sets(st.sampled_from(sorted(INDICATOR_NAMES)), min_size=1, max_size=10))
        document = agreement_document(
            name,
            party=party,
            detail=detail,
            targets=[f"urn:zerocarbon:indicator:{i}" for i in sorted(indicators)],
            purposes=draw(st.lists(st.sampled_from(list(Purpose)), min_size=1, max_size=3, unique=True)),
            start=start,
            end=end,
            window=draw(st.none() | st.sampled_from(WINDOW_ORDER)),
            retention=retention,
        )
        return _parsed(document)
    families = draw(st.sets(st.sampled_from(FAMILIES), max_size=2)) | ({family} if family else set())
    kinds = draw(st.sets(st.sampled_from(sorted(KIND_FAMILY)), min_size=0 if families else 1, max_size=4))
    covered = {kind for kind, of in KIND_FAMILY.items() if kind in kinds or of in families}
    visible = sorted(frozenset[str]().union(*(KIND_FIELDS[kind] for kind in covered)))
    omit = draw(st.sets(st.sampled_from(visible), max_size=3))
    anonymize = draw(st.sets(st.sampled_from([f for f in visible if f not in omit]), max_size=3))
    document = agreement_document(
        name,
        party=party,
        detail=detail,
        targets=[f"urn:zerocarbon:family:{f}" for f in sorted(families)]
        + [f"urn:zerocarbon:kind:{k}" for k in sorted(kinds)],
        purposes=draw(st.lists(st.sampled_from(sorted(EVENT_PURPOSES)), min_size=1, max_size=2, unique=True)),
        start=start,
        end=end,
        producers=draw(st.none() | st.lists(st.sampled_from(PRODUCERS), min_size=1, max_size=3, unique=True)),
        retention=retention,
        omit=omit,
        anonymize=anonymize,
    )
    return _parsed(document)


@st.composite
def agreement_sets(draw: st.DrawFn, max_size: int = 4) -> list[Agreement]:
    """1 to ``max_size`` agreements the loader accepts, of distinct uids."""
    found = []
    for n in range(draw(st.integers(1, max_size))):
        agreement = draw(agreements(f"a{n}").filter(lambda a: a is not None))
        assert agreement is not None
        found.append(agreement)
    return found


# --- Events and updates, shaped as the JSON of schemas/energy.py, mobility.py, environment.py


MINUTES = st.integers(-6 * 60, HOURS * 60)
CARRIER_UNITS = (("electricity", "kWh"), ("natural_gas", "m3"), ("heat_network", "MWh"), ("solar_pv", "Wh"))


def _envelope(draw: st.DrawFn, schema: str, device: str) -> Event:
    at = T0 + timedelta(minutes=draw(MINUTES))
    return {
        "schema": schema,
        "schema_version": 1,
        "event_id": f"{device}-{at:%Y%m%dT%H%M}",
        "producer_id": draw(st.sampled_from(PRODUCERS)),
        "event_time": _instant(at),
        "ingestion_time": _instant(at + timedelta(seconds=draw(st.integers(1, 600)))),
    }


def _before(event: Event, minutes: int) -> str:
    return _instant(datetime.fromisoformat(event["event_time"]) - timedelta(minutes=minutes))


@st.composite
def energy_readings(draw: st.DrawFn) -> Event:
    sector = draw(st.sampled_from(SECTORS))
    # Households' meters and the others' are told apart by their prefix, so that a search
    # for a household's id in a release cannot find another meter's.
    meter = f"{'RES' if sector == 'residential' else 'PRO'}{draw(st.integers(10**13, 10**14 - 1))}"
    reading = _envelope(draw, "energy.reading", meter)
    carrier, unit = draw(st.sampled_from(CARRIER_UNITS))
    kind = draw(st.sampled_from(["interval", "index"]))
    return reading | {
        "meter_id": meter,
        "commune": draw(st.sampled_from(COMMUNES)),
        "sector": sector,
        "carrier": carrier,
        "quantity": draw(st.floats(0, 1e5, allow_nan=False)),
        "unit": unit,
        "kind": kind,
        "interval_start": _before(reading, 30) if kind == "interval" else None,
    }


@st.composite
def mobility_events(draw: st.DrawFn, kinds: tuple[str, ...] = ()) -> Event:
    """A mobility event, of one of ``kinds`` half of the time if any is given."""
    kind = draw(_preferring(kinds, MOBILITY_KINDS))
    device = f"{kind.split('_')[0]}-{draw(st.integers(0, 30))}"
    mobility = _envelope(draw, "mobility.event", device)
    mobility |= {"device_id": device, "commune": draw(st.sampled_from(COMMUNES)), "kind": kind}
    earlier = _before(mobility, draw(st.integers(1, 90)))
    distance = draw(st.floats(0, 80, allow_nan=False))
    count = draw(st.integers(0, 60))
    line = {"mode": draw(st.sampled_from(["bus", "sea_bus"])), "line": f"L{draw(st.integers(1, 20))}"}
    extras: dict[str, Event] = {
        "bike_trip": {"started_at": earlier, "distance_km": distance, "electric": draw(st.booleans())},
        "carsharing_trip": {"started_at": earlier, "distance_km": distance, "electric": draw(st.booleans())},
        "bike_station_status": {
            "available_bike_number": count,
            "free_slot_number": 3,
            "total_slot_number": count + 5,
        },
        "transit_validation": line | {"passengers": count, "interval_start": earlier},
        "transit_trip": line
        | {
            "started_at": earlier,
            "distance_km": distance,
            "passengers": count,
            "energy_kwh": draw(st.none() | st.floats(0, 500, allow_nan=False)),
        },
        "traffic_count": {
            "interval_start": earlier,
            "intensity": count,
            "average_vehicle_speed": draw(st.none() | st.floats(0, 130, allow_nan=False)),
            "lane_id": draw(st.none() | st.integers(1, 4)),
        },
        "parking_occupancy": {"occupied_spot_number": count, "total_spot_number": count + 10},
        "ev_charging_session": {"started_at": earlier, "energy_kwh": draw(st.floats(0, 80, allow_nan=False))},
    }
    return mobility | extras[kind]


@st.composite
def environment_readings(draw: st.DrawFn) -> Event:
    sensor = f"aq-{draw(st.sampled_from(COMMUNES))}-{draw(st.integers(0, 9)):04d}"
    quantity = draw(st.sampled_from(list(EnvQuantity)))
    return _envelope(draw, "environment.reading", sensor) | {
        "sensor_id": sensor,
        "commune": draw(st.sampled_from(COMMUNES)),
        "location": draw(st.none() | st.just({"lat": 46.16, "lon": -1.15})),
        "quantity": quantity.value,
        "value": draw(st.floats(-40, 500, allow_nan=False)),
        "unit": UNIT_OF[quantity],
    }


EVENTS_OF: dict[str, st.SearchStrategy[Event]] = {
    "energy": energy_readings(),
    "environment": environment_readings(),
    "mobility": mobility_events(),
}
RECORDS: st.SearchStrategy[Record] = st.sampled_from(FAMILIES).flatmap(
    lambda family: st.tuples(st.just(family), st.lists(EVENTS_OF[family], min_size=1, max_size=8))
)


def _preferring(preferred: Iterable[str], every: Iterable[str]) -> st.SearchStrategy[str]:
    """One of ``preferred`` half of the time (if any), one of ``every`` otherwise."""
    anything = st.sampled_from(sorted(every))
    return st.sampled_from(sorted(preferred)) | anything if preferred else anything


@st.composite
def records(draw: st.DrawFn, agreements: list[Agreement]) -> Record:
    """A record of one family, often one ``agreements`` target, its events often of their kinds."""
    kinds = {k for a in agreements for k in a.targets.kinds}
    family = draw(
        _preferring(
            {KIND_FAMILY[k] for k in kinds} | {f for a in agreements for f in a.targets.families}, FAMILIES
        )
    )
    mobility = tuple(sorted(k for k in kinds if KIND_FAMILY[k] == "mobility"))
    strategy = mobility_events(mobility) if family == "mobility" else EVENTS_OF[family]
    return family, draw(st.lists(strategy, min_size=1, max_size=8))


def _within(agreement: Agreement) -> st.SearchStrategy[datetime]:
    end = agreement.valid_until or agreement.valid_from + timedelta(hours=HOURS)
    span = int((end - agreement.valid_from).total_seconds())
    return st.integers(0, span - 1).map(lambda seconds: agreement.valid_from + timedelta(seconds=seconds))


def nows(agreements: list[Agreement]) -> st.SearchStrategy[datetime]:
    """Any instant of the span, one at an edge of an agreement's validity, or one within it."""
    edges = [a.valid_from for a in agreements] + [a.valid_until for a in agreements if a.valid_until]
    near = st.sampled_from(edges).flatmap(lambda at: st.sampled_from([at, at - timedelta(microseconds=1)]))
    return st.one_of(NOWS, near, st.sampled_from(agreements).flatmap(_within))


DIMENSIONS: list[dict[str, str]] = [
    {},
    {"sector": "tertiary"},
    {"mode": "bus"},
    {"commune": "17300"},
    {"carrier": "electricity", "commune": "17300", "sector": "residential"},
    {"commune": "17028", "quantity": "no2", "station": "aq-17028-0001"},
    {"commune": "17000", "producer": "enedis"},
]


@st.composite
def indicator_updates(draw: st.DrawFn, agreements: Iterable[Agreement] = ()) -> Update:
    """An update, often of an indicator ``agreements`` target."""
    indicator = draw(_preferring({i for a in agreements for i in a.targets.indicators}, INDICATOR_NAMES))
    start = T0 + timedelta(hours=draw(st.integers(-6, HOURS)))
    return {
        "schema": "indicator.update",
        "schema_version": 1,
        "indicator": indicator,
        "unit": INDICATORS.get(indicator, ("kgCO2e", "sum"))[0],
        "window": draw(_preferring(["1d", "ytd"], WINDOW_ORDER)),
        "window_start": _instant(start),
        "window_end": _instant(start + timedelta(hours=1)),
        "dimensions": dict(draw(st.just({}) | st.sampled_from(DIMENSIONS))),
        "value": draw(st.just(0.0) | st.floats(allow_nan=False, allow_infinity=False)),
        "final": draw(st.booleans()),
        "revision": draw(st.integers(0, 5)),
        "updated_at": _instant(start + timedelta(hours=2)),
    }


def _open_data(window: str | None = None) -> Agreement:
    """Open data of every indicator by commune, in force from before every instant drawn:
    where secret cells are released."""
    return parse_agreement(
        agreement_document(
            "open-data",
            party="public",
            detail=Detail.COMMUNE_AGGREGATES,
            targets=[f"urn:zerocarbon:indicator:{i}" for i in sorted(INDICATOR_NAMES)],
            purposes=[Purpose.PUBLIC_INFORMATION],
            start=T0 - timedelta(hours=7),
            window=window,
            retention=None,
        ),
        INDICATOR_NAMES,
    )


@dataclass(frozen=True)
class Scenario:
    """Agreements, then a record, a batch of updates and an instant drawn to often meet them."""

    agreements: list[Agreement]
    family: str
    events: list[Event]
    updates: list[Update]
    now: datetime


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    agreements = draw(agreement_sets())
    family, events = draw(records(agreements))
    updates = draw(st.lists(indicator_updates(agreements), min_size=1, max_size=5))
    return Scenario(agreements, family, events, updates, draw(nows(agreements)))


# --- What each agreement should release, read from its terms ----------------------------


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


# --- The generators are what they say ---------------------------------------------------

VALIDATE: dict[str, Callable[[str], object]] = {
    "energy": EnergyReading.model_validate_json,
    "environment": EnvironmentReading.model_validate_json,
    "mobility": MOBILITY_ADAPTER.validate_json,
}


def test_the_families_are_those_of_the_event_kinds() -> None:
    assert set(FAMILIES) == set(KIND_FAMILY.values())
    assert set(EVENTS_OF) == set(FAMILIES)


@settings(max_examples=100, deadline=None)
@given(RECORDS, indicator_updates())
def test_the_generated_events_and_updates_are_valid_under_the_contracts(
    record: Record, update: Update
) -> None:
    family, events = record
    for e in events:
        VALIDATE[family](json.dumps(e))
        assert set(e) <= KIND_FIELDS[_kind(family, e)]
    IndicatorUpdate.model_validate_json(json.dumps(update))


# --- Properties -------------------------------------------------------------------------


@MORE_EXAMPLES
@given(scenarios())
def test_each_event_release_is_under_a_held_agreement_in_force_covering_each_of_its_events(
    s: Scenario,
) -> None:
    engine = _engine(s.agreements)
    releases = engine.events(s.family, s.events, s.now)
    event(f"{len(releases)} releases")
    for uid, release in _by_uid(releases).items():
        agreement = release.agreement
        assert engine.agreements[uid] is agreement
        assert _in_force(agreement, s.now) and agreement.detail is Detail.PSEUDONYMISED_EVENTS
        covered = _covered(agreement, s.family, s.events, s.now)
        shared = json.loads(release.value)
        assert release.items == len(shared) == len(covered)
        for original, item in zip(covered, shared, strict=True):
            _assert_shared_as_agreed(agreement, s.family, original, item)
        assert (release.key, release.secret) == (None, 0)
        times = [_time(e["event_time"]) for e in covered]
        assert (release.first_time, release.last_time) == (min(times), max(times))
        assert release.topic == party_topic(agreement.party) == f"zc.share.{agreement.party}"
        assert release.headers == [
            (AGREEMENT_HEADER, uid.encode()),
            (VERSION_HEADER, agreement.version.encode()),
        ]


@EXAMPLES
@given(scenarios())
def test_events_no_agreement_in_force_covers_are_not_released(s: Scenario) -> None:
    expected = {a.uid for a in s.agreements if _covered(a, s.family, s.events, s.now)}
    assert set(_by_uid(_engine(s.agreements).events(s.family, s.events, s.now))) == expected
    uncovered = [e for e in s.events if not any(_covered(a, s.family, [e], s.now) for a in s.agreements)]
    event("some events uncovered" if uncovered else "every event covered")
    assert _engine(s.agreements).events(s.family, uncovered, s.now) == []
    covered = [e for e in s.events if e not in uncovered]
    assert _summary(_engine(s.agreements).events(s.family, s.events, s.now)) == _summary(
        _engine(s.agreements).events(s.family, covered, s.now)
    )


@EXAMPLES
@given(
    agreement_sets(max_size=3),
    agreements("energy-research", Detail.PSEUDONYMISED_EVENTS, "energy", always=True).filter(
        lambda a: a is not None
    ),
    st.lists(energy_readings(), min_size=1, max_size=10),
    NOWS,
)
def test_a_household_meter_leaves_only_as_its_keyed_pseudonym(
    agreements: list[Agreement], energy: Agreement, readings: list[Event], now: datetime
) -> None:
    releases = _engine([*agreements, energy]).events("energy", readings, now)
    pseudonymise = Pseudonymiser(KEYS)
    households = [r for r in readings if r["sector"] == "residential"]
    event("households released" if households and releases else "no household released")
    for release in releases:
        for reading in households:
            assert reading["meter_id"].encode() not in release.value
            assert reading["event_id"].encode() not in release.value
        covered = _covered(release.agreement, "energy", readings, now)
        for original, item in zip(covered, json.loads(release.value), strict=True):
            if original["sector"] == "residential":
                for name in HOUSEHOLD_FIELDS & set(item):
                    assert item[name] == pseudonymise(original[name]) and PSEUDONYM.match(item[name])


@EXAMPLES
@given(
    agreement_sets(max_size=2),
    st.sampled_from(FAMILIES).flatmap(
        lambda family: st.tuples(
            st.just(family),
            agreements("fields", Detail.PSEUDONYMISED_EVENTS, family, always=True).filter(
                lambda a: a is not None
            ),
            st.lists(EVENTS_OF[family], min_size=1, max_size=6),
        )
    ),
    NOWS,
)
def test_omitted_fields_are_absent_and_pseudonymised_fields_are_pseudonyms(
    agreements: list[Agreement], drawn: tuple[str, Agreement, list[Event]], now: datetime
) -> None:
    family, fields, events = drawn
    releases = _engine([*agreements, fields]).events(family, events, now)
    event(f"{len(releases)} releases")
    for release in releases:
        agreement = release.agreement
        for item in json.loads(release.value):
            assert not agreement.omit_fields & set(item)
            for name in agreement.pseudonymise_fields & set(item):
                assert item[name] is None or PSEUDONYM.match(item[name]), (name, item[name])
        for original, item in zip(
            _covered(agreement, family, events, now), json.loads(release.value), strict=True
        ):
            _assert_shared_as_agreed(agreement, family, original, item)


@MORE_EXAMPLES
@given(scenarios())
def test_each_cell_release_is_under_a_held_agreement_in_force_allowing_each_of_its_cells(s: Scenario) -> None:
    engine = _engine(s.agreements)
    releases = engine.indicators(s.updates, s.now)
    event(f"{len(releases)} releases")
    for uid, release in _by_uid(releases).items():
        agreement = release.agreement
        assert engine.agreements[uid] is agreement
        assert _in_force(agreement, s.now) and agreement.detail.is_aggregate
        allowed = _allowed(agreement, s.updates, s.now)
        cells = json.loads(release.value)
        assert release.items == len(cells) == len(allowed)
        for update, cell in zip(allowed, cells, strict=True):
            assert update["indicator"] in agreement.targets.indicators
            assert agreement.window_allowed(update["window"])
            assert agreement.detail is not Detail.TERRITORY_AGGREGATES or "commune" not in cell["dimensions"]
            _assert_cell_of(agreement, update, cell)
        assert release.secret == sum(_secret(u) for u in allowed)
        starts = [_time(u["window_start"]) for u in allowed]
        assert (release.first_time, release.last_time) == (min(starts), max(starts))
        assert release.key is None and release.topic == party_topic(agreement.party)
        assert release.headers == [
            (AGREEMENT_HEADER, uid.encode()),
            (VERSION_HEADER, agreement.version.encode()),
        ]


@EXAMPLES
@given(scenarios())
def test_updates_no_agreement_in_force_allows_are_not_released(s: Scenario) -> None:
    expected = {a.uid for a in s.agreements if _allowed(a, s.updates, s.now)}
    event(f"allowed by {len(expected)}")
    assert set(_by_uid(_engine(s.agreements).indicators(s.updates, s.now))) == expected
    refused = [u for u in s.updates if not any(_allows(a, u, s.now) for a in s.agreements)]
    assert _engine(s.agreements).indicators(refused, s.now) == []
    allowed = [u for u in s.updates if u not in refused]
    assert _summary(_engine(s.agreements).indicators(s.updates, s.now)) == _summary(
        _engine(s.agreements).indicators(allowed, s.now)
    )


@EXAMPLES
@given(scenarios(), st.sampled_from(WINDOW_ORDER), st.data())
def test_a_secret_cell_goes_out_null_never_zero_and_a_published_cell_with_its_value(
    s: Scenario, window: str, data: st.DataObject
) -> None:
    open_data = _open_data(window)
    updates = [
        u
        | {
            "indicator": data.draw(_preferring(METERED_ENERGY, INDICATOR_NAMES)),
            "dimensions": data.draw(st.sampled_from(DIMENSIONS)),
        }
        for u in s.updates
    ]
    releases = _engine([*s.agreements, open_data]).indicators(updates, s.now)
    secrets = sum(r.secret for r in releases)
    event(f"{'secret' if secrets else 'no secret'} cell released")
    for release in releases:
        cells = json.loads(release.value)
        assert release.secret == sum(cell["status"] == "secret" for cell in cells)
        for update, cell in zip(_allowed(release.agreement, updates, s.now), cells, strict=True):
            if _secret(update):
                assert cell["value"] is None and cell["status"] == "secret"
            else:
                assert cell["value"] == update["value"] and type(cell["value"]) is float
                assert cell["status"] == "published"
        assert release.value.count(b'"value":null') == release.secret


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


# --- The shipped agreements -------------------------------------------------------------


def _sample(stem: str) -> Agreement:
    return load_agreement_file(SAMPLES_DIR / f"{stem}.jsonld", INDICATOR_NAMES)


SAMPLE_STEMS = (
    "lru-energy-research",
    "public-open-indicators",
    "region-territory-steering",
    "yelo-mobility-planning",
)
JUNE = datetime(2026, 9, 15, 8, tzinfo=UTC)  # every sample is in force
EIGHT = datetime(2026, 9, 15, 8, tzinfo=UTC)


def _samples() -> SharingEngine:
    return _engine(_sample(stem) for stem in SAMPLE_STEMS)


def _reading(sector: str, producer: str = "enedis") -> Event:
    meter = "09876543210123" if sector == "residential" else "55500011122233"
    return {
        "schema": "energy.reading",
        "schema_version": 1,
        "event_id": f"{meter}-20260915T0800",
        "producer_id": producer,
        "event_time": "2026-09-15T08:00:00Z",
        "ingestion_time": "2026-09-15T08:00:04Z",
        "meter_id": meter,
        "commune": "17300",
        "sector": sector,
        "carrier": "electricity",
        "quantity": 1.25,
        "unit": "kWh",
        "kind": "interval",
        "interval_start": "2026-09-15T07:30:00Z",
    }


def _trip(device: str = "bike-0042", **changes: Any) -> Event:
    return {
        "schema": "mobility.event",
        "schema_version": 1,
        "event_id": f"{device}-20260915T0800",
        "producer_id": "yelo",
        "event_time": "2026-09-15T08:00:00Z",
        "ingestion_time": "2026-09-15T08:00:02Z",
        "device_id": device,
        "commune": "17300",
        "kind": "bike_trip",
        "started_at": "2026-09-15T07:41:00Z",
        "distance_km": 3.2,
        "electric": True,
    } | changes


def _cell(indicator: str, window: str, dimensions: dict[str, str], value: float = 12.5) -> Update:
    return {
        "schema": "indicator.update",
        "schema_version": 1,
        "indicator": indicator,
        "unit": "kgCO2e",
        "window": window,
        "window_start": "2026-09-14T00:00:00Z",
        "window_end": "2026-09-15T00:00:00Z",
        "dimensions": dimensions,
        "value": value,
        "final": True,
        "revision": 2,
        "updated_at": "2026-09-15T00:05:00Z",
    }


def test_every_sample_is_in_force_on_the_examples_day() -> None:
    assert all(_sample(stem).active(JUNE) for stem in SAMPLE_STEMS)


def test_the_research_lab_receives_a_households_readings_pseudonymised_and_without_ingestion_time() -> None:
    pseudonymise = Pseudonymiser(KEYS)
    households, offices = _reading("residential"), _reading("tertiary", "grdf")
    [release] = _samples().events("energy", [households, offices], JUNE)
    assert release.agreement.uid == "urn:zerocarbon:agreement:lru-energy-research"
    assert release.topic == "zc.share.lru-lab"
    assert dict(release.headers)[AGREEMENT_HEADER] == b"urn:zerocarbon:agreement:lru-energy-research"
    assert dict(release.headers)[VERSION_HEADER] == release.agreement.version.encode()
    assert b"09876543210123" not in release.value
    home, office = json.loads(release.value)
    assert home["meter_id"] == pseudonymise("09876543210123")
    assert home["event_id"] == pseudonymise("09876543210123-20260915T0800")
    assert home["producer_id"] == pseudonymise("enedis")
    assert "ingestion_time" not in home
    assert home["quantity"] == 1.25 and home["interval_start"] == "2026-09-15T07:30:00Z"
    # A business's meter is no household: only what the agreement says is pseudonymised.
    assert office["meter_id"] == "55500011122233" and office["event_id"] == "55500011122233-20260915T0800"
    assert office["producer_id"] == pseudonymise("grdf")
    assert (release.items, release.secret, release.first_time, release.last_time) == (2, 0, EIGHT, EIGHT)


def test_a_reading_of_a_producer_outside_the_agreement_goes_nowhere() -> None:
    assert _samples().events("energy", [_reading("residential", "sunpower-coop")], JUNE) == []


def test_bike_trips_go_to_the_bike_operator_with_their_device_pseudonymised_and_car_parks_do_not() -> None:
    trip = _trip()
    car_park = trip | {"kind": "parking_occupancy", "device_id": "parking-17300-0016"}
    [release] = _samples().events("mobility", [car_park, trip], JUNE)
    assert release.topic == "zc.share.yelo-operator"
    [shared] = json.loads(release.value)
    assert shared == trip | {"device_id": Pseudonymiser(KEYS)("bike-0042")}
    assert b"parking-17300-0016" not in release.value


def test_the_bike_operator_receives_nothing_before_or_after_its_agreement() -> None:
    engine = _samples()
    assert engine.events("mobility", [_trip()], datetime(2026, 5, 31, 21, 59, 59, tzinfo=UTC)) == []
    assert len(engine.events("mobility", [_trip()], datetime(2026, 5, 31, 22, tzinfo=UTC))) == 1
    assert engine.events("mobility", [_trip()], datetime(2027, 5, 31, 22, tzinfo=UTC)) == []


def test_open_data_hides_metered_energy_below_the_territory_and_publishes_the_rest() -> None:
    updates = [
        _cell("energy_consumed_kwh", "1d", {"commune": "17300"}),
        _cell("passenger_km", "1d", {"commune": "17300", "mode": "bus"}),
        _cell("energy_consumed_kwh", "1d", {}, value=0.0),
    ]
    [release] = _samples().indicators(updates, JUNE)
    assert release.topic == "zc.share.public" and release.key is None
    assert (release.items, release.secret) == (3, 1)
    energy, transit, territory = json.loads(release.value)
    assert (energy["value"], energy["status"]) == (None, "secret")
    assert (transit["value"], transit["status"]) == (12.5, "published")
    assert (territory["value"], territory["status"]) == (0.0, "published")
    assert transit["attribution"].endswith("Licence Ouverte 2.0 (Etalab)")
    assert transit["revision"] == 2 and transit["final"] is True


def test_open_data_of_an_hour_or_of_an_indicator_it_does_not_name_goes_nowhere() -> None:
    engine = _samples()
    assert engine.indicators([_cell("energy_consumed_kwh", "1h", {"commune": "17300"})], JUNE) == []
    assert engine.indicators([_cell("heating_degree_days", "1d", {"commune": "17300"})], JUNE) == []
    assert not engine.wants_indicator("heating_degree_days") and engine.wants_indicator("passenger_km")


def test_the_territorys_total_goes_to_the_public_and_to_the_region() -> None:
    releases = _samples().indicators([_cell("territory_emissions_kgco2e", "1d", {}, value=0.0)], JUNE)
    assert sorted(r.topic for r in releases) == ["zc.share.public", "zc.share.regional-observatory"]
    assert all(json.loads(r.value)[0]["value"] == 0.0 and r.secret == 0 for r in releases)


def test_the_region_receives_territory_cells_of_an_hour_and_more_only() -> None:
    engine = _samples()
    [hourly] = engine.indicators([_cell("territory_trajectory_ratio", "1h", {})], JUNE)
    assert hourly.topic == "zc.share.regional-observatory"
    assert engine.indicators([_cell("territory_trajectory_ratio", "15m", {})], JUNE) == []
    assert engine.indicators([_cell("territory_trajectory_ratio", "1d", {"commune": "17300"})], JUNE) == []


def test_an_engine_without_agreements_wants_and_shares_nothing() -> None:
    engine = SharingEngine(Pseudonymiser(KEYS))
    assert not any(engine.wants_family(f) for f in FAMILIES)
    assert not any(engine.wants_indicator(i) for i in INDICATOR_NAMES)
    assert engine.events("energy", [_reading("tertiary")], JUNE) == []
    assert engine.indicators([_cell("territory_emissions_kgco2e", "1d", {})], JUNE) == []
    assert engine.take_tallies() == {}


def test_the_samples_want_energy_and_mobility_but_not_environment() -> None:
    engine = _samples()
    assert [f for f in FAMILIES if engine.wants_family(f)] == ["energy", "mobility"]
    engine.revoke("urn:zerocarbon:agreement:lru-energy-research")
    assert [f for f in FAMILIES if engine.wants_family(f)] == ["mobility"]


def test_replacing_the_agreements_drops_those_not_given_again() -> None:
    engine = _samples()
    engine.replace([_sample("yelo-mobility-planning")])
    assert list(engine.agreements) == ["urn:zerocarbon:agreement:yelo-bike-planning"]
    assert engine.events("energy", [_reading("residential")], JUNE) == []
    assert engine.indicators([_cell("territory_emissions_kgco2e", "1d", {})], JUNE) == []


def test_a_tally_counts_the_secret_cells_of_every_release() -> None:
    engine = _samples()
    engine.indicators([_cell("energy_consumed_kwh", "1d", {"commune": "17300"})], JUNE)
    engine.indicators(
        [_cell("emissions_kgco2e", "1d", {"commune": "17000"}), _cell("passenger_km", "ytd", {})], JUNE
    )
    [(agreement, tally)] = engine.take_tallies().values()
    assert agreement.party == "public"
    assert (tally.records, tally.items, tally.secret) == (2, 3, 2)


def test_a_revoked_agreements_tally_is_still_taken() -> None:
    engine = _samples()
    engine.events("energy", [_reading("residential"), _reading("tertiary")], JUNE)
    engine.revoke("urn:zerocarbon:agreement:lru-energy-research")
    assert engine.events("energy", [_reading("residential")], JUNE) == []
    [(agreement, tally)] = engine.take_tallies().values()
    assert agreement.uid == "urn:zerocarbon:agreement:lru-energy-research"
    assert (tally.records, tally.items, tally.secret) == (1, 2, 0)
    assert tally.first_time == tally.last_time == EIGHT


def _lru_with(**duties: list[str]) -> Agreement:
    """The research sample with its field duties replaced (anonymize=..., omit=...)."""
    document: dict[str, Any] = json.loads(
        (SAMPLES_DIR / "lru-energy-research.jsonld").read_text(encoding="utf-8")
    )
    permission = document["permission"][0]
    permission["duty"] = [d for d in permission["duty"] if not isinstance(d["action"], list)]
    for action, fields in (("odrl:anonymize", duties.get("anonymize")), ("zc:omit", duties.get("omit"))):
        if fields:
            refinement = [{"leftOperand": "zc:field", "operator": "isAnyOf", "rightOperand": fields}]
            permission["duty"].append({"action": [{"rdf:value": {"@id": action}, "refinement": refinement}]})
    return parse_agreement(document, INDICATOR_NAMES)


def test_a_new_version_of_an_agreement_is_named_by_the_releases_and_tallied_apart() -> None:
    first, second = _sample("lru-energy-research"), _lru_with(anonymize=["producer_id", "commune"])
    assert first.uid == second.uid and first.version != second.version
    engine = _engine([first])
    [before] = engine.events("energy", [_reading("tertiary")], JUNE)
    engine.grant(second)
    [after] = engine.events("energy", [_reading("tertiary"), _reading("industry")], JUNE)
    assert dict(before.headers)[VERSION_HEADER] == first.version.encode()
    assert dict(after.headers)[VERSION_HEADER] == second.version.encode()
    assert json.loads(after.value)[0]["commune"] == Pseudonymiser(KEYS)("17300")
    taken = engine.take_tallies()
    assert {key: tally.items for key, (_, tally) in taken.items()} == {
        (first.uid, first.version): 1,
        (second.uid, second.version): 2,
    }
    assert taken[(first.uid, first.version)][0] is first


def test_an_agreement_may_omit_event_time_and_its_releases_are_still_timed_by_it() -> None:
    engine = _engine([_lru_with(omit=["ingestion_time", "event_time"])])
    [release] = engine.events("energy", [_reading("tertiary")], JUNE)
    assert "event_time" not in json.loads(release.value)[0]
    assert release.first_time == release.last_time == EIGHT


def test_an_agreement_pseudonymising_event_time_still_times_its_releases_by_it() -> None:
    [release] = _engine([_lru_with(anonymize=["event_time"])]).events("energy", [_reading("tertiary")], JUNE)
    assert json.loads(release.value)[0]["event_time"] == Pseudonymiser(KEYS)("2026-09-15T08:00:00Z")
    assert release.first_time == release.last_time == EIGHT


@pytest.mark.parametrize(
    ("agreement", "family", "event", "field"),
    [
        (_lru_with(anonymize=["quantity"]), "energy", _reading("tertiary"), "quantity"),
        (_lru_with(anonymize=["interval_start"]), "energy", _reading("tertiary"), "interval_start"),
        (
            parse_agreement(
                agreement_document(
                    "air",
                    party="lru-lab",
                    detail=Detail.PSEUDONYMISED_EVENTS,
                    targets=["urn:zerocarbon:family:environment", "urn:zerocarbon:kind:traffic_count"],
                    purposes=[Purpose.SCIENTIFIC_RESEARCH],
                    start=T0,
                    anonymize=["location", "lane_id"],
                ),
                INDICATOR_NAMES,
            ),
            "environment",
            {
                "producer_id": "atmo",
                "event_time": "2026-09-15T08:00:00Z",
                "location": {"lat": 46.1, "lon": -1.1},
            },
            "location",
        ),
    ],
    ids=["a-number", "a-text", "an-object"],
)
def test_a_pseudonymised_field_of_any_type_goes_out_as_a_pseudonym(
    agreement: Agreement, family: str, event: Event, field: str
) -> None:
    [release] = _engine([agreement]).events(family, [event], JUNE)
    assert PSEUDONYM.match(json.loads(release.value)[0][field])


def test_the_first_time_of_a_release_is_its_earliest_event_to_the_fraction_of_a_second() -> None:
    whole, half = _reading("tertiary"), _reading("tertiary") | {"event_time": "2026-09-15T08:00:00.500000Z"}
    [release] = _engine([_sample("lru-energy-research")]).events("energy", [half, whole], JUNE)
    assert (release.first_time, release.last_time) == (EIGHT, EIGHT + timedelta(milliseconds=500))


def test_the_same_event_shared_under_two_agreements_gets_each_ones_duties() -> None:
    plain, hidden = _sample("lru-energy-research"), _lru_with(omit=["quantity"], anonymize=["commune"])
    other = parse_agreement(hidden.document | {"uid": "urn:zerocarbon:agreement:lru-other"}, INDICATOR_NAMES)
    first, second = _engine([plain, other]).events("energy", [_reading("residential")], JUNE)
    one, two = json.loads(first.value)[0], json.loads(second.value)[0]
    assert one["quantity"] == 1.25 and one["commune"] == "17300"
    assert "quantity" not in two and two["commune"] == Pseudonymiser(KEYS)("17300")
    assert one["meter_id"] == two["meter_id"] == Pseudonymiser(KEYS)("09876543210123")


# --- Known defects ----------------------------------------------------------------------


def test_a_record_the_engine_fails_on_leaves_nothing_in_the_tallies() -> None:
    def yelo(uid: str, kind: str) -> Agreement:
        document = _sample("yelo-mobility-planning").document | {"uid": f"urn:zerocarbon:agreement:{uid}"}
        permission = document["permission"][0] | {"target": [f"urn:zerocarbon:kind:{kind}"]}
        return parse_agreement(document | {"permission": [permission]}, INDICATOR_NAMES)

    engine = _engine([yelo("trips", "bike_trip"), yelo("stations", "bike_station_status")])
    station = _trip("station-3", kind="bike_station_status", event_time="not an instant")
    with pytest.raises(ValueError):
        engine.events("mobility", [_trip(), station], JUNE)
    assert engine.take_tallies() == {}
