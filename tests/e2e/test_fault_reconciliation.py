"""Every fault the simulator injects, reconciled instance by instance with what reached Kafka.

A simulated territory with every fault at a few per cent goes through the bridge and a worker
whose indicator stage starts afresh on every typed partition. The simulator lists which
messages carry which fault (``zerocarbon simulate --report-events``); each instance must be
where docs/devices.md and docs/indicators.md say:

- malformed: on zc.deadletter (validation stage), its MQTT topic as origin, its bytes verbatim;
- duplicate: its event id once on its typed topic, and the copy in validation's duplicate count;
- out of order, late, clock skew, offline backlog, index reset: its event id once on its typed
  topic, with the event time the device stamped (validation keeps a skewed time as it was sent);
- at the indicator stage: a reading whose 1-minute window had closed when it arrived (the
  partition's watermark at or past the window's end plus the grace) is counted late, through
  the corrections path, every other one on time; each cumulative index that fell is an
  ``index_reset`` dead letter naming its meter and comes from a reset the simulator injected,
  each injected reset is reported unless the counter could not be seen to fall; no
  consumption is negative, and each series' year to date is the consumption its readings carry.

On failure, the message lists the instances that are not where they should be, fault by fault.

Found by this test and fixed: the indicator stage took a fall from an index in the top tenth
of its power of ten (9.6 kWh, 95 kWh: a meter reset shortly before) for a counter that
wrapped, and counted the wrap; registers are now at least 10 000 kWh
(streams/index_deltas.py). ``test_a_reset_soon_after_a_reset_is_reported_as_a_reset`` keeps
it fixed; the reconciliation still accounts for a genuine wrap by the engine's rule.
"""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import sys
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from reference.loader import load_reference
from schemas.catalogue import DEAD_LETTER_TOPIC, INDICATOR_TOPIC, valid_topic
from schemas.dead_letter import DeadLetter
from schemas.energy import EnergyReading
from schemas.families import FAMILIES
from schemas.partition_key import commune_partition
from sensors import faults
from streams.index_deltas import ROLLOVER_MARGIN, counter_capacity
from streams.validation_agent import VALID_ARRAY
from tests.integration.golden_meters import RESIDENTIAL, forget_indicator_state, produce_raw
from tests.integration.kafka_reading import records_after, topic_ends
from tests.integration.worker_runs import start_worker
from zerocarbon.demo import BRIDGE_READY, worker_counters
from zerocarbon.processes import spawn_command, stop_child, wait_for_log
from zerocarbon.settings import Settings

DEVICES = 360
MESSAGES = 4000
FAULT_RATES = {
    "--malformed": 0.03,
    "--duplicate": 0.03,
    "--out-of-order": 0.03,
    "--late": 0.03,
    "--clock-skew": 0.1,
    "--offline": 0.003,
    "--index-reset": 0.08,
}
SMALLEST_WINDOW_S = 60
# Where the indicator stage puts each typed event: every one ends in exactly one of these.
INDICATOR_OUTCOMES = (
    "counted", "late", "duplicate", "index_baselines", "index_reset", "index_out_of_order", "index_jump",
    "no_emission_factor",
)  # fmt: skip
SHOWN = 8  # failing instances listed per check


def simulate(*args: str) -> dict[str, Any]:
    """Run `zerocarbon simulate` to completion; its printed report."""
    done = subprocess.run(
        [sys.executable, "-m", "zerocarbon.cli", "simulate", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report: dict[str, Any] = json.loads(done.stdout)
    return report


@dataclass(frozen=True)
class Typed:
    """An event as it reached its typed topic; a list of them keeps each partition's order."""

    family: str
    partition: int
    event: Any  # the family's pydantic model, as the indicator stage reads it

    @property
    def event_id(self) -> str:
        return str(self.event.event_id)

    @property
    def device_id(self) -> str:
        return str(getattr(self.event, FAMILIES[self.family].device_field))


def typed_events(written: list[tuple[str, bytes]], partitions: int) -> list[Typed]:
    """The events of the typed topics, in the order of each partition (the partition is the
    commune's: validation routes every event there)."""
    family_of = {valid_topic(name): name for name in FAMILIES}
    out = []
    for topic, value in written:
        family = family_of.get(topic)
        if family is not None:
            for event in VALID_ARRAY[family].validate_json(value):
                out.append(Typed(family, commune_partition(event.commune, partitions), event))
    return out


def instance_time(record: dict[str, Any]) -> datetime:
    """The event time the device stamped; for a malformed payload without one, its event id's."""
    if record["event_time"] is not None:
        return datetime.fromisoformat(record["event_time"])
    if record["event_id"] is not None:
        return datetime.fromtimestamp(int(record["event_id"].rsplit("-", 1)[1]), UTC)
    # Cut before its event id: a malformed message is never held back, so it was stamped when
    # sent, by the device's clock.
    sent = datetime.fromisoformat(record["sent_at"]).timestamp()
    return datetime.fromtimestamp(sent + (record.get("clock_skew_s") or 0), UTC)


@dataclass
class IndicatorStage:
    """What the indicator stage must make of the typed events it reads, by the rules of
    docs/indicators.md applied to the order they arrived in, from an empty state:

    - a meter's first index is a baseline; an index not after the meter's last is out of order;
      an index below the last one is a reset (the simulated counters are far from wrapping),
      except a wrap: the last index in the top tenth of its register (``counter_capacity``)
      and the wrap within the meter's power (``rollovers``: counted);
      anything else contributes, an interval reading where its interval starts;
    - a contribution is late when its partition's watermark (the highest contribution time
      before it) is at or past its 1-minute window's end plus the grace; exactly at it is
      counted as either (``late_max``), in case the boundary were taken the other way.
    """

    late_min: int = 0
    late_max: int = 0
    contributions: int = 0
    baselines: int = 0
    falls: list[tuple[Typed, Typed]] = field(default_factory=list)  # (last index, the lower one)
    rollovers: list[tuple[Typed, Typed]] = field(default_factory=list)  # falls counted as a wrap
    out_of_order: list[str] = field(default_factory=list)  # event ids of index readings
    verdicts: dict[str, str] = field(default_factory=dict)  # event id -> what happened to it
    # (commune, sector, carrier, year) -> kWh
    consumed_kwh: defaultdict[tuple[str, str, str, int], float] = field(
        default_factory=lambda: defaultdict(float)
    )


def wrapped_kwh(previous: EnergyReading, lower: EnergyReading, max_power_kw: float) -> float | None:
    """The consumption the engine derives from a fall it takes for a wrapped counter
    (streams/index_deltas.py: capacity guessed from the last index), else None."""
    capacity = counter_capacity(previous.quantity_kwh)
    wrapped = capacity - previous.quantity_kwh + lower.quantity_kwh
    hours = (lower.event_time - previous.event_time).total_seconds() / 3600
    if previous.quantity_kwh >= ROLLOVER_MARGIN * capacity and wrapped <= max_power_kw * hours:
        return wrapped
    return None


def expected_indicator_stage(
    typed: list[Typed], no_factor: set[str], grace: int, registry: Path
) -> IndicatorStage:
    bounds = load_reference(registry).bounds.energy
    stage = IndicatorStage()
    watermarks: dict[tuple[str, int], int] = {}
    last_index: dict[str, Typed] = {}
    for t in typed:
        e = t.event
        at: datetime = e.event_time
        kwh: float = 0.0
        if isinstance(e, EnergyReading) and e.kind == "index":
            previous = last_index.get(e.meter_id)
            if previous is None:
                last_index[e.meter_id] = t
                stage.baselines += 1
                stage.verdicts[t.event_id] = "index baseline"
                continue
            if e.event_time <= previous.event.event_time:
                stage.out_of_order.append(t.event_id)
                stage.verdicts[t.event_id] = "index out of order"
                continue
            last_index[e.meter_id] = t
            if e.quantity_kwh < previous.event.quantity_kwh:
                limit = bounds.power_limit_kw(str(e.carrier), str(e.sector))
                wrapped = wrapped_kwh(previous.event, e, limit)
                if wrapped is None:
                    stage.falls.append((previous, t))
                    stage.verdicts[t.event_id] = "index reset"
                    continue
                stage.rollovers.append((previous, t))
                kwh = wrapped
            else:
                kwh = e.quantity_kwh - previous.event.quantity_kwh
        elif isinstance(e, EnergyReading):
            kwh = e.quantity_kwh
            at = e.interval_start or at
        if t.event_id in no_factor:
            stage.verdicts[t.event_id] = "no emission factor"
            continue
        ts = int(at.timestamp())
        closes = ts - ts % SMALLEST_WINDOW_S + SMALLEST_WINDOW_S + grace
        watermark = watermarks.get((t.family, t.partition), 0)
        if watermark > closes:
            stage.late_min += 1
            stage.late_max += 1
            stage.verdicts[t.event_id] = "late"
        elif watermark == closes:
            stage.late_max += 1
            stage.verdicts[t.event_id] = "late or on time (at the boundary)"
        else:
            stage.verdicts[t.event_id] = "on time"
        watermarks[(t.family, t.partition)] = max(watermark, ts)
        stage.contributions += 1
        if isinstance(e, EnergyReading) and e.carrier != "solar_pv":
            stage.consumed_kwh[(e.commune, str(e.sector), str(e.carrier), at.year)] += kwh
    return stage


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


def check_consumption(findings: Findings, stage: IndicatorStage, updates: list[dict[str, Any]]) -> None:
    consumed = [u for u in updates if u["indicator"] == "energy_consumed_kwh"]
    negative = [u for u in consumed if u["value"] < 0]
    findings.expect("consumption: never negative", not negative, f"{negative[:SHOWN]}")
    ytd: dict[tuple[str, str, str, int], float] = {}
    for u in consumed:
        if u["window"] == "ytd":
            d, year = u["dimensions"], datetime.fromisoformat(u["window_start"]).year
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
    findings.expect(
        "late beyond the grace: counted late (corrections path), exactly those",
        stage.late_min <= delta["late"] <= stage.late_max,
        f"{delta['late']} counted late, {stage.late_min}..{stage.late_max} arrived after their window closed",
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


def outcomes_of(counters: dict[str, Any]) -> int:
    """Typed events the indicator stage has dealt with, whatever the outcome."""
    return sum(counters["indicators"].get(name, 0) for name in INDICATOR_OUTCOMES)


async def wait_until(settings: Settings, reached: Any, timeout: float) -> dict[str, Any]:
    """The worker's counters once ``reached(counters)`` holds (or at the timeout)."""
    deadline = time.monotonic() + timeout
    counters = worker_counters(settings)
    while time.monotonic() < deadline and not reached(counters):
        await asyncio.sleep(0.5)
        counters = worker_counters(settings)
    return counters


async def quiet(settings: Settings) -> dict[str, Any]:
    """The worker's counters once it has received nothing new for two seconds."""
    counters = worker_counters(settings)
    while True:
        await asyncio.sleep(2)
        now = worker_counters(settings)
        if now["received"] == counters["received"]:
            return now
        counters = now


async def settled(settings: Settings, topics: list[str], timeout: float = 30) -> None:
    """Until nothing more is written to ``topics`` for two seconds (or at the timeout)."""
    deadline = time.monotonic() + timeout
    ends = await topic_ends(settings, topics)
    while time.monotonic() < deadline:
        await asyncio.sleep(2)
        now = await topic_ends(settings, topics)
        if now == ends:
            return
        ends = now


async def fresh_worker(settings: Settings, log: Path, registry: Path) -> subprocess.Popen[bytes]:
    """A worker whose indicator state is empty on every typed partition, so that windows close
    on this run's event times only; started again if a backlog reached that state first."""
    for _ in range(2):
        for family in FAMILIES:
            await forget_indicator_state(settings, range(settings.kafka_partitions), family)
        worker = start_worker(log, {"ZC_REFERENCE_DIR": str(registry)})
        counters = await quiet(settings)
        if not outcomes_of(counters):
            return worker
        stop_child(worker)  # an earlier run's raw backlog is now consumed: forget it too
    raise AssertionError(f"a backlog keeps reaching the typed topics; worker log {log}")


async def test_each_injected_fault_arrives_where_it_should(settings: Settings, tmp_path: Path) -> None:
    registry = tmp_path / "reference"
    simulate("--devices", str(DEVICES), "--write-registry", str(registry))
    bridge_id = f"zc-e2e-faults-{uuid.uuid4().hex[:8]}"
    worker = await fresh_worker(settings, tmp_path / "worker.log", registry)
    bridge = spawn_command(["bridge", "--client-id", bridge_id], tmp_path / "bridge.log")
    try:
        wait_for_log(bridge, tmp_path / "bridge.log", BRIDGE_READY, timeout=60)
        before = await quiet(settings)
        assert not outcomes_of(before), f"a backlog reached the indicator stage first: {before['indicators']}"
        valid_topics = [valid_topic(name) for name in FAMILIES]
        starts = await topic_ends(settings, [*valid_topics, DEAD_LETTER_TOPIC, INDICATOR_TOPIC])
        events_file = tmp_path / "fault-instances.json"
        rates = [str(arg) for option, rate in FAULT_RATES.items() for arg in (option, rate)]
        report = await asyncio.to_thread(
            simulate, "--devices", str(DEVICES), "--count", str(MESSAGES), "--rate", "2000",
            "--seed", str(uuid.uuid4().int % (1 << 30)), "--report-events", str(events_file), *rates,
        )  # fmt: skip
        assert report["acknowledged"] == report["messages"] >= MESSAGES
        detail = json.loads(events_file.read_text())
        instances: dict[str, list[dict[str, Any]]] = detail["per_fault"]
        assert {fault: len(records) for fault, records in instances.items()} == report["per_fault"]
        assert all(report["per_fault"][fault] > 0 for fault in faults.FAULTS), report["per_fault"]

        expected = report["expected_at_validation"]
        received = before["received"] + report["messages"]
        await wait_until(settings, lambda c: c["received"] >= received, timeout=120)
        outcomes = outcomes_of(before) + expected["accepted"]
        await wait_until(settings, lambda c: outcomes_of(c) >= outcomes, timeout=120)
        await settled(settings, [INDICATOR_TOPIC, DEAD_LETTER_TOPIC])  # the flush publishes every second
        after = worker_counters(settings)
        written = await records_after(settings, starts)
    finally:
        stop_child(bridge)
        stop_child(worker)
        subprocess.run(
            [sys.executable, "-m", "zerocarbon.cli", "bridge", "--forget-session", "--client-id", bridge_id],
            capture_output=True,
            timeout=60,
        )

    typed = typed_events(written, settings.kafka_partitions)
    letters = [
        DeadLetter.model_validate_json(value) for topic, value in written if topic == DEAD_LETTER_TOPIC
    ]
    updates = [json.loads(value) for topic, value in written if topic == INDICATOR_TOPIC]
    no_factor = {
        json.loads(letter.payload)["event_id"]
        for letter in letters
        if letter.stage == "indicators" and letter.errors[0].type == "no_emission_factor"
    }
    stage = expected_indicator_stage(typed, no_factor, settings.indicator_grace_seconds, registry)

    findings = Findings()
    findings.expect(
        "validation: accepted, dead-lettered, duplicates as the report expects",
        len(typed) == expected["accepted"]
        and after["received"] - before["received"] == report["messages"]
        and after["balanced"],
        f"{len(typed)} on the typed topics, {after['received'] - before['received']} received; "
        f"report {expected}",
    )
    check_malformed(findings, instances[faults.MALFORMED], letters)
    check_typed(findings, detail, typed)
    check_duplicates(findings, instances[faults.DUPLICATE], before, after)
    resets = check_index_resets(findings, instances[faults.INDEX_RESET], typed, stage, letters)
    check_indicator_counts(findings, stage, before["indicators"], after["indicators"])
    check_consumption(findings, stage, updates)

    findings.summary.append(f"{report['messages']} messages, seed {report['seed']}; per fault:")
    for fault in faults.FAULTS:
        verdicts = Counter(
            stage.verdicts.get(str(r["event_id"]), "not on the typed topic") for r in instances[fault]
        )
        findings.summary.append(
            f"  {fault:<16} {len(instances[fault]):>5}  indicator stage: {dict(verdicts)}"
        )
    skews = [r["clock_skew_s"] for r in instances[faults.CLOCK_SKEW]]
    findings.summary.append(
        f"  clock skew: {sum(s > 0 for s in skews)} messages ahead (up to {max(skews):g} s), "
        f"{sum(s < 0 for s in skews)} behind, kept as stamped"
    )
    findings.summary.append(f"  index resets: {resets}")
    print(findings.report())
    assert not findings.failures, findings.report()
    assert resets.get("reported", 0) > 0, resets
    assert stage.late_min > 0 and stage.late_max < stage.contributions, (stage.late_min, stage.contributions)


async def test_a_reset_soon_after_a_reset_is_reported_as_a_reset(settings: Settings, tmp_path: Path) -> None:
    meter, run = RESIDENTIAL, uuid.uuid4().hex[:8]
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    readings = [(0, 42_000.0), (15, 9.6), (30, 4.7)]  # minutes after start, index in kWh
    events = [
        {
            "event_id": f"reset-twice-{run}-{k}", "producer_id": "golden-tests",
            "event_time": (start + timedelta(minutes=minutes)).isoformat(), "meter_id": meter.meter_id,
            "commune": meter.commune, "sector": meter.sector, "carrier": "electricity",
            "quantity": index, "unit": "kWh", "kind": "index",
        }
        for k, (minutes, index) in enumerate(readings)
    ]  # fmt: skip
    await forget_indicator_state(settings, [meter.partition(settings)])  # the meter's last index: none
    worker = start_worker(tmp_path / "worker.log")
    try:
        before = await quiet(settings)
        starts = await topic_ends(settings, [DEAD_LETTER_TOPIC])
        await produce_raw(settings, meter, [json.dumps(events).encode()])
        await wait_until(settings, lambda c: outcomes_of(c) >= outcomes_of(before) + len(events), timeout=60)
        written = await records_after(settings, starts)
    finally:
        stop_child(worker)
    resets = [
        json.loads(letter.payload)["event_id"]
        for letter in (DeadLetter.model_validate_json(value) for _, value in written)
        if letter.stage == "indicators" and letter.errors[0].type == "index_reset"
    ]
    assert resets == [events[1]["event_id"], events[2]["event_id"]]
