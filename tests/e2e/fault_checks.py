"""The checks of the fault reconciliation, fault by fault: each failure names its instance
(tests/e2e/test_fault_reconciliation.py)."""

from __future__ import annotations

import base64
import json
from collections import Counter, defaultdict
from datetime import datetime
from typing import Any

from schemas.dead_letter import DeadLetter
from schemas.energy import EnergyReading
from schemas.local_calendar import Calendar
from sensors import faults
from tests.e2e.fault_expectations import IndicatorStage, Typed, instance_time

SHOWN = 8  # failing instances listed per check


class Findings:
    """Failures per check, each naming the instance at fault."""

    def __init__(self) -> None:
        self.failures: dict[str, list[str]] = defaultdict(list)
        self.summary: list[str] = []

    def fail(self, check: str, what: str) -> None:
        self.failures[check].append(what)

    def expect(self, check: str, ok: bool, what: str) -> None:
        if not ok:
            self.fail(check, what)

    def report(self) -> str:
        lines = [*self.summary, ""]
        for check, failed in self.failures.items():
            lines.append(f"{check}: {len(failed)} failed")
            lines += [f"  - {what}" for what in failed[:SHOWN]]
            if len(failed) > SHOWN:
                lines.append(f"  ... and {len(failed) - SHOWN} more")
        return "\n".join(lines)


def describe(record: dict[str, Any]) -> str:
    return f"#{record['sequence']} {record['event_id'] or '(no event id)'} on {record['topic']}"


def check_malformed(findings: Findings, instances: list[dict[str, Any]], letters: list[DeadLetter]) -> None:
    refused: Counter[tuple[str, str, bytes]] = Counter(
        (letter.origin.transport, letter.origin.topic, letter.original_payload())
        for letter in letters
        if letter.stage == "validation"
    )
    for record in instances:
        key = ("mqtt", record["topic"], base64.b64decode(record["payload_base64"]))
        if refused[key] > 0:
            refused[key] -= 1
        else:
            same_bytes = [k for k, n in refused.items() if n and k[2] == key[2]]
            findings.fail(
                "malformed: on zc.deadletter with its MQTT topic and its bytes",
                f"{describe(record)}: "
                + (f"dead-lettered with origin {same_bytes[0][:2]}" if same_bytes else "no such dead letter"),
            )
    for (transport, topic, payload), n in (+refused).items():
        findings.fail(
            "validation dead letters: only the malformed payloads",
            f"{n} x {payload[:80]!r} from {transport} {topic}",
        )


def check_typed(findings: Findings, report: dict[str, Any], typed: list[Typed]) -> None:
    by_id: dict[str, list[Typed]] = defaultdict(list)
    for t in typed:
        by_id[t.event_id].append(t)
    for fault, instances in report["per_fault"].items():
        check = f"{fault}: once on zc.valid.<family> with the event time the device stamped"
        for record in instances:
            found = by_id.get(record["event_id"], [])
            if record["expected_at_validation"] == faults.DEAD_LETTERED:
                findings.expect(check, not found, f"{describe(record)}: malformed, yet on the typed topic")
                continue
            if len(found) != 1:
                findings.fail(check, f"{describe(record)}: {len(found)} times on the typed topic")
                continue
            event = found[0].event
            commune = record["topic"].split("/")[1]
            sent = datetime.fromisoformat(record["event_time"])
            findings.expect(
                check,
                (found[0].family, found[0].device_id, event.commune)
                == (record["family"], record["device_id"], commune),
                f"{describe(record)}: arrived as {found[0].family} {found[0].device_id} in {event.commune}",
            )
            findings.expect(
                check,
                event.event_time == sent,
                f"{describe(record)}: event time {event.event_time.isoformat()}, "
                f"sent as {record['event_time']}",
            )
    repeated = {event_id: len(ts) for event_id, ts in by_id.items() if len(ts) > 1}
    findings.expect(
        "typed topics: every event id once", not repeated, f"repeated: {list(repeated.items())[:SHOWN]}"
    )


def check_duplicates(
    findings: Findings, instances: list[dict[str, Any]], before: dict[str, Any], after: dict[str, Any]
) -> None:
    injected = Counter(str(record["producer_id"]) for record in instances)
    counted = Counter(after["duplicates"]) - Counter(before["duplicates"])
    findings.expect(
        "duplicate: each copy counted by validation as a duplicate, per producer",
        counted == injected,
        f"counted {dict(counted)}, injected {dict(injected)}",
    )


def check_index_resets(
    findings: Findings,
    instances: list[dict[str, Any]],
    typed: list[Typed],
    stage: IndicatorStage,
    letters: list[DeadLetter],
) -> dict[str, int]:
    """Resets against the indicator stage's dead letters; how many were reported and why others
    could not be (for the summary)."""
    indexes: dict[str, list[Typed]] = defaultdict(list)
    for t in typed:
        if isinstance(t.event, EnergyReading) and t.event.kind == "index":
            indexes[t.event.meter_id].append(t)
    reported = Counter(
        json.loads(letter.payload)["event_id"]
        for letter in letters
        if letter.stage == "indicators" and letter.errors[0].type == "index_reset"
    )
    named = {
        json.loads(letter.payload)["event_id"]: json.loads(letter.payload)["meter_id"]
        for letter in letters
        if letter.stage == "indicators" and letter.errors[0].type == "index_reset"
    }
    fell = Counter(f.event_id for _, f in stage.falls)
    findings.expect(
        "index_reset: a dead letter for each index that fell, and only those",
        reported == fell,
        f"dead letters without a fall {dict(reported - fell)}, "
        f"falls without a dead letter {dict(fell - reported)}",
    )
    for previous, lower in stage.falls:
        findings.expect(
            "index_reset: the dead letter names the meter",
            named.get(lower.event_id) == lower.event.meter_id,
            f"{lower.event_id} named {named.get(lower.event_id)}",
        )
        explained = any(
            record["device_id"] == lower.event.meter_id
            and previous.event.event_time < instance_time(record) <= lower.event.event_time
            for record in instances
        )
        findings.expect(
            "index_reset: every fall comes from an injected reset",
            explained,
            f"{lower.event.meter_id}: {previous.event.quantity_kwh:g} kWh at {previous.event.event_time} "
            f"fell to {lower.event.quantity_kwh:g} kWh at {lower.event.event_time} with no reset injected",
        )
    outcome: Counter[str] = Counter()
    for record in instances:
        if faults.DUPLICATE in record["faults"]:
            continue  # the copy of a reset reading: the same reset, already looked at
        at = instance_time(record)
        last: Typed | None = None
        for t in indexes.get(record["device_id"], []):
            if last is not None and t.event.event_time <= last.event.event_time:
                continue  # out of order: never compared
            if t.event.event_time >= at:
                if last is None:
                    outcome["not visible: the meter's first reading in the run (a baseline)"] += 1
                elif any(lower is t for _, lower in stage.rollovers):
                    outcome["taken for a wrapped counter and counted (its register's top tenth)"] += 1
                elif t.event.quantity_kwh < last.event.quantity_kwh:
                    outcome["reported"] += 1
                    findings.expect(
                        "index_reset: each injected reset reported on the first reading that shows it",
                        reported[t.event_id] > 0,
                        f"{describe(record)}: no index_reset dead letter for {t.event_id}",
                    )
                else:
                    outcome["not visible: the index did not fall (reset again right after a reset)"] += 1
                break
            last = t
        else:
            outcome["not visible: no later reading of the meter was accepted"] += 1
    return dict(outcome)


def check_consumption(
    findings: Findings, stage: IndicatorStage, updates: list[dict[str, Any]], calendar: Calendar
) -> None:
    """Never negative, and each series' year to date (a local year of ``calendar``, which begins
    before 1 January in UTC east of Greenwich) is what its readings carry."""
    consumed = [u for u in updates if u["indicator"] == "energy_consumed_kwh"]
    negative = [u for u in consumed if u["value"] < 0]
    findings.expect("consumption: never negative", not negative, f"{negative[:SHOWN]}")
    ytd: dict[tuple[str, str, str, int], float] = {}
    for u in consumed:
        if u["window"] == "ytd":
            start = datetime.fromisoformat(u["window_start"].replace("Z", "+00:00"))
            d, year = u["dimensions"], calendar.year_of(int(start.timestamp()))
            ytd[(d["commune"], d["sector"], d["carrier"], year)] = u["value"]  # the latest one wins
    for series in sorted(set(ytd) | set(stage.consumed_kwh)):
        expected, published = stage.consumed_kwh.get(series, 0.0), ytd.get(series)
        findings.expect(
            "consumption: each series' year to date is what its readings carry (no huge delta)",
            published is not None and abs(published - expected) <= 1e-6 * max(1.0, expected),
            f"{series}: {published} kWh published, {expected:.6f} kWh in the readings",
        )


def check_indicator_counts(
    findings: Findings, stage: IndicatorStage, before: dict[str, int], after: dict[str, int]
) -> None:
    delta = Counter(after) - Counter(before)
    # Windows close on the producers' progress, never ahead of the partition's watermark and
    # moved at flushes, on the worker's clock (docs/indicators.md, "The finality rule"): a
    # reading late for it was late for the watermark, not the other way round.
    findings.expect(
        "late: counted through the corrections path, no more than were late for the watermark",
        delta["late"] <= stage.late_max,
        f"{delta['late']} counted late, {stage.late_min}..{stage.late_max} arrived after their window "
        "closed on the partition's watermark",
    )
    findings.expect(
        "on time: counted",
        delta["counted"] == stage.contributions - delta["late"],
        f"{delta['counted']} counted on time of {stage.contributions} contributions, {delta['late']} late",
    )
    for name, expected in (
        ("duplicate", 0),
        ("index_baselines", stage.baselines),
        ("index_reset", len(stage.falls)),
        ("index_out_of_order", len(stage.out_of_order)),
        ("index_jump", 0),
    ):
        findings.expect(
            f"indicator counter {name}", delta[name] == expected, f"{delta[name]}, expected {expected}"
        )
