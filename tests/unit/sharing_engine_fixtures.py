"""Random agreements, events of the three families and indicator updates, drawn around the same hours so
that the sharing engine's properties meet agreements starting, ending and overlapping."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st

from schemas.environment import UNIT_OF, EnvQuantity
from sharing.agreement_terms import EVENT_PURPOSES, WINDOW_ORDER, Detail, Purpose
from sharing.agreements import Agreement, AgreementError, parse_agreement
from sharing.event_kinds import KIND_FAMILY, KIND_FIELDS
from sharing.pseudonyms import Pseudonymiser, PseudonymKeys
from sharing.sharing_engine import SharingEngine
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
