"""Sharing benchmark: what the sharing stage costs per reading, against the indicator stage.

The stage's own engine (sharing/sharing_engine.py) and the JSON it reads and writes, minus
Kafka: the ``mix`` workload of bench/indicator_throughput.py (valid records of a commune
partition: energy, mobility, environment), then every indicator update the indicator engine
made of it, each through the sharing engine as `zerocarbon share` handles a record (parse,
the agreements in force, the releases' JSON). Run with no agreement and with ``--agreements``
(50 by default) drawn at random over the profile: on events (kinds, producers, a field
pseudonymised), ``--on-events`` of them, and on aggregates (indicators by commune or
territory, minimum windows). Each agreement on events takes a share of every reading of its
kinds: its cost grows with how many there are, which the default runs show (5 and 25 of 50).

The issue's target: with 50 agreements, at most 10 % of the worker's throughput. The figure
compared is the indicator stage's CPU for the same readings (validation, the worker's other
half, is left out: the ratio printed is an upper bound of the share of the worker's CPU).
Prints a table and saves JSON in bench/results/.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from datetime import UTC, datetime
from typing import Any

from indicator_throughput import mix_records, run_once
from machine import describe
from pydantic_core import from_json
from results_file import print_figures, save_results

from schemas.catalogue import valid_topic
from schemas.indicator import IndicatorUpdate
from sharing.agreements import Agreement, AgreementError, parse_agreement
from sharing.event_kinds import KIND_FAMILY, KIND_FIELDS
from sharing.pseudonyms import Pseudonymiser, PseudonymKeys
from sharing.share_stage import indicator_name
from sharing.sharing_engine import SharingEngine
from sinks.territory_rollup import OURS
from streams.indicators.catalogue import INDICATORS

INDICATOR_NAMES = frozenset({*INDICATORS, *OURS})
PRODUCERS = ("enedis", "grdf", "yelo", "atmo-na", "ville-lr", "cda-lr")


def random_agreement(n: int, rng: random.Random, events: bool) -> Agreement:
    """One agreement of the profile, on events or on aggregates, with random terms."""
    constraints: list[dict[str, Any]] = [
        {"leftOperand": "dateTime", "operator": "gteq", "rightOperand": "2026-01-01T00:00:00Z"}
    ]
    duties: list[dict[str, Any]] = [
        {"action": "attribute", "zc:attributionText": f"bench agreement {n}"},
        {
            "action": "delete",
            "constraint": [{"leftOperand": "elapsedTime", "operator": "lteq", "rightOperand": "P30D"}],
        },
    ]
    if events:
        kinds = rng.sample(sorted(KIND_FAMILY), rng.randint(1, 4))
        targets = [f"urn:zerocarbon:kind:{k}" for k in kinds]
        constraints += [
            {"leftOperand": "purpose", "operator": "eq", "rightOperand": "zc:scientific-research"},
            {"leftOperand": "zc:detail", "operator": "eq", "rightOperand": "zc:pseudonymised-events"},
        ]
        if rng.random() < 0.5:
            producers = rng.sample(PRODUCERS, 2)
            constraints.append(
                {"leftOperand": "zc:producer", "operator": "isAnyOf", "rightOperand": producers}
            )
        fields = sorted(set.intersection(*(set(KIND_FIELDS[k]) for k in kinds)) - {"schema"})
        refine = [{"leftOperand": "zc:field", "operator": "isAnyOf", "rightOperand": [rng.choice(fields)]}]
        duties.append({"action": [{"rdf:value": {"@id": "odrl:anonymize"}, "refinement": refine}]})
    else:
        targets = [
            f"urn:zerocarbon:indicator:{i}" for i in rng.sample(sorted(INDICATOR_NAMES), rng.randint(1, 6))
        ]
        detail = rng.choice(["zc:commune-aggregates", "zc:territory-aggregates"])
        constraints += [
            {"leftOperand": "purpose", "operator": "eq", "rightOperand": "zc:territorial-steering"},
            {"leftOperand": "zc:detail", "operator": "eq", "rightOperand": detail},
            {"leftOperand": "zc:window", "operator": "gteq", "rightOperand": rng.choice(["1m", "1h", "1d"])},
        ]
    document = {
        "@context": ["http://www.w3.org/ns/odrl.jsonld", {"zc": "urn:zerocarbon:odrl:"}],
        "@type": "Agreement",
        "uid": f"urn:zerocarbon:agreement:bench-{n}",
        "profile": "urn:zerocarbon:odrl:profile:1",
        "assigner": "urn:zerocarbon:party:cda-lr",
        "assignee": f"urn:zerocarbon:party:bench-party-{n}",
        "permission": [{"target": targets, "action": "use", "constraint": constraints, "duty": duties}],
    }
    return parse_agreement(document, INDICATOR_NAMES)


def agreements(count: int, on_events: int, seed: int = 7) -> list[Agreement]:
    """``count`` agreements, the first ``on_events`` of them on events."""
    rng = random.Random(seed)
    out: list[Agreement] = []
    while len(out) < count:
        try:
            out.append(random_agreement(len(out), rng, events=len(out) < on_events))
        except AgreementError:  # a field duty on a field not in every kind drawn: draw again
            continue
    return out


def share_once(
    inputs: list[tuple[str, bytes | None, bytes]], granted: list[Agreement]
) -> tuple[float, int, int]:
    """CPU seconds, releases and released bytes of one pass of every input through the engine."""
    engine = SharingEngine(Pseudonymiser(PseudonymKeys(1, {1: b"k" * 32})))
    engine.replace(granted)
    now = datetime.now(UTC)
    releases = released_bytes = 0
    t0 = time.process_time()
    updates: list[dict[str, Any]] = []
    for topic, value in inputs:  # as the stage reads a batch: events per record, updates together
        if topic.startswith("zc.valid."):
            family = topic.removeprefix("zc.valid.")
            if engine.wants_family(family):
                out = engine.events(family, from_json(value), now)
                releases += len(out)
                released_bytes += sum(len(r.value) for r in out)
        elif engine.wants_indicator(indicator_name(value) or ""):
            updates.append(from_json(value))
        if len(updates) == 500 or (updates and topic.startswith("zc.valid.")):
            out = engine.indicators(updates, now)
            releases += len(out)
            released_bytes += sum(len(r.value) for r in out)
            updates = []
            engine.take_tallies()
    out = engine.indicators(updates, now)
    releases += len(out)
    released_bytes += sum(len(r.value) for r in out)
    engine.take_tallies()
    return time.process_time() - t0, releases, released_bytes


def run(readings: int, per_record: int, runs: int, agreement_count: int, on_events: int) -> dict[str, object]:
    records = mix_records(readings, per_record)
    updates: list[IndicatorUpdate] = []
    indicator_cpu = [run_once(records, 20, collect=updates)[0]]
    indicator_cpu += [run_once(records, 20)[0] for _ in range(runs - 1)]
    inputs: list[tuple[str, bytes]] = [(valid_topic(f), v) for f, v in records]
    inputs += [("zc.indicators", u.model_dump_json(by_alias=True).encode()) for u in updates]
    granted = agreements(agreement_count, on_events)
    none = [share_once(inputs, []) for _ in range(runs)]
    many = [share_once(inputs, granted) for _ in range(runs)]
    indicators = statistics.median(indicator_cpu)
    sharing_none = statistics.median(p[0] for p in none)
    sharing_many = statistics.median(p[0] for p in many)
    return {
        "benchmark": "sharing",
        "when": datetime.now(UTC).isoformat(),
        "machine": describe(),
        "readings": readings,
        "indicator_updates": len(updates),
        "agreements": agreement_count,
        "event_agreements": sum(not a.detail.is_aggregate for a in granted),
        "runs": runs,
        "indicator_stage_cpu_seconds": round(indicators, 3),
        "sharing_cpu_seconds_no_agreement": round(sharing_none, 3),
        "sharing_cpu_seconds": round(sharing_many, 3),
        "releases": many[0][1],
        "released_megabytes": round(many[0][2] / 1e6, 1),
        "readings_per_cpu_second_sharing": round(readings / sharing_many),
        "sharing_share_of_indicator_stage": round(sharing_many / indicators, 3),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--readings", type=int, default=100_000)
    parser.add_argument("--per-record", type=int, default=500)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--agreements", type=int, default=50)
    parser.add_argument(
        "--on-events",
        type=int,
        action="append",
        help="how many of the agreements share events, the others aggregates (repeat for several "
        "runs; default: 5 and 25)",
    )
    args = parser.parse_args()
    for on_events in args.on_events or [5, 25]:
        result = run(args.readings, args.per_record, args.runs, args.agreements, on_events)
        print_figures(result, width=36)
        print()
        save_results(f"sharing-{on_events}-on-events", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
