"""The fault suite's reconciliation (issue 19): at the end of a scenario, was anything lost
or counted twice?

It counts from Kafka rather than from the worker's counters (a restarted worker's counters
start again from 0): the readings in the raw records since the territory's start (unpacked as
the worker unpacks them), the events on the typed topics, the dead letters; the worker's
counters are compared too when one worker ran from start to end. In InfluxDB it reads the
daily windows of the days the run's readings fall on: a reading later than its 1-minute
window's grace (an hourly meter's interval starts an hour before its event time) is left out
of its hour and still counts in its day.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from aiokafka.structs import TopicPartition
from influxdb_client import InfluxDBClient

from config.kafka_access import KafkaAccess
from config.settings import Settings
from schemas.catalogue import DEAD_LETTER_TOPIC, raw_topic
from schemas.dead_letter import DeadLetter
from schemas.energy import EnergyReading
from schemas.local_calendar import Calendar, ZoneCalendar
from sensors import faults
from streams.kafka_admin import consumer_records_after, records_after
from streams.validation.raw_records import RawRecord, Unpacked, unpack
from tests.e2e.fault_checks import Findings, check_malformed, check_typed
from tests.e2e.fault_expectations import Typed, expected_indicator_stage, typed_events
from zerocarbon.component_configs import influx_read_target
from zerocarbon.demo import validation_totals, worker_counters

if TYPE_CHECKING:
    from tests.faults.territory import ExpectedLetter, LoadReport, Territory

_EVENT_ID = re.compile(rb'"event_id"\s*:\s*"([^"\\]*)"')


@dataclass
class Outputs:
    """What reached Kafka since the territory's start offsets.

    A worker SIGKILLed validates again the raw records after its last commit: their events
    and dead letters reach the topics a second time (the indicator stage skips the events by
    source offset). ``typed`` and ``dead`` hold each once, in first-seen order; ``replayed``
    counts the repeats set aside.
    """

    readings: list[Unpacked]  # of the raw records, unpacked as the worker unpacks them
    typed: list[Typed]  # the typed topics' events, in each partition's order
    dead: list[DeadLetter]
    replayed: int


async def collect_outputs(territory: Territory) -> Outputs:
    raw_starts = {tp: o for tp, o in territory.starts.items() if tp.topic.startswith(raw_topic(""))}
    raw = await raw_records_after(territory.kafka, raw_starts)
    others = {tp: o for tp, o in territory.starts.items() if tp not in raw_starts}
    written = await records_after(territory.kafka, others)
    every_typed = typed_events(written, territory.settings.kafka_partitions)
    typed: dict[tuple[str, str], Typed] = {}
    for t in every_typed:
        typed.setdefault((str(t.event.producer_id), t.event_id), t)
    letters = [DeadLetter.model_validate_json(v) for topic, v in written if topic == DEAD_LETTER_TOPIC]
    dead: dict[object, DeadLetter] = {}
    for k, letter in enumerate(letters):
        # A replayed one comes from the same place in the same raw record; a dead letter with no
        # place in Kafka (the bridge's) cannot be replayed by the worker.
        origin = letter.origin
        place = (letter.stage, origin.topic, origin.partition, origin.offset, origin.index)
        dead.setdefault(place if origin.offset is not None else k, letter)
    return Outputs(
        readings=[item for record in raw for item in unpack(record)],
        typed=list(typed.values()),
        dead=list(dead.values()),
        replayed=len(every_typed) - len(typed) + len(letters) - len(dead),
    )


def reconcile_kafka(
    territory: Territory, load: LoadReport, letters: Sequence[ExpectedLetter], out: Outputs
) -> Findings:
    """Validation's outcomes, the raw readings by event id and the dead letters' reasons, from
    Kafka; the worker's counters too when one worker ran throughout."""
    expected = load.expected
    findings = Findings()
    findings.summary.append(
        f"{load.messages} messages (seed {load.report['seed']}), simulated from "
        f"{load.report['simulated_start']} to {load.report['simulated_end']}; report {expected}; "
        f"{len(letters)} payloads of the scenario's own"
    )
    for letter in out.dead:
        findings.expect(
            "every dead letter has a reason",
            bool(letter.reason.strip()) and bool(letter.errors) and all(e.type for e in letter.errors),
            f"{letter.stage} dead letter from {letter.origin.topic}: reason {letter.reason!r}",
        )
    others = check_own_letters(findings, letters, out.dead)
    # Validation's outcomes, counted from the topics: what the raw readings became.
    own_readings = sum(1 for sent in letters if sent.stage != "bridge")
    refused = [d for d in others if d.stage == "validation"]
    counted = {
        "accepted": len(out.typed),
        "dead_lettered": len(refused),
        "duplicates": len(out.readings) - own_readings - len(out.typed) - len(refused),
    }
    findings.expect(
        "validation: accepted, dead-lettered, duplicates as the simulator's report expects (from Kafka)",
        counted == expected,
        f"counted from the topics {counted}, report {expected}; {len(out.readings)} raw readings "
        f"({own_readings} of the scenario's own)",
    )
    if territory.worker.kills:
        findings.summary.append(f"{out.replayed} events and dead letters replayed after the worker's SIGKILL")
    else:
        findings.expect(
            "typed and dead-letter topics: each event and each dead letter once",
            out.replayed == 0,
            f"{out.replayed} repeated, with no worker killed",
        )
    check_malformed(findings, load.detail["per_fault"][faults.MALFORMED], refused)
    check_typed(findings, load.detail, out.typed)
    check_raw_once(findings, load, out.readings)
    check_worker_counters(
        findings, territory, load, own_readings, sum(1 for s in letters if s.stage == "validation")
    )
    return findings


def check_own_letters(
    findings: Findings, letters: Sequence[ExpectedLetter], dead: list[DeadLetter]
) -> list[DeadLetter]:
    """Each of the scenario's payloads dead-lettered once, at its stage, for its reason; the
    other dead letters."""
    others = list(dead)
    check = "each payload of the scenario's own dead-lettered with its reason"
    for sent in letters:
        same = [
            d for d in others if d.payload_size == len(sent.payload) and d.original_payload() == sent.payload
        ]
        match = next((d for d in same if d.stage == sent.stage), None)
        if match is None:
            found = [f"{d.stage}/{d.errors[0].type}" for d in same]
            findings.fail(check, f"{sent.name}: no {sent.stage} dead letter (found {found})")
            continue
        others.remove(match)
        findings.expect(
            check,
            match.errors[0].type == sent.reason,
            f"{sent.name}: {match.stage}/{match.errors[0].type} ({match.reason[:160]}), "
            f"expected {sent.reason}",
        )
    return others


def check_worker_counters(
    findings: Findings, territory: Territory, load: LoadReport, own_readings: int, own_refused: int
) -> None:
    """The worker's validation counters moved by what the report expects, when one worker
    counted everything (a restarted worker's counters start again from 0)."""
    worker = territory.worker
    if worker.restarts or not worker.running:
        findings.summary.append("the worker restarted: its counters started again; Kafka's count stands")
        return
    before = validation_totals(territory.counters_before)
    after = validation_totals(worker_counters(territory.settings))
    delta = {name: after[name] - before[name] for name in after}
    expected = load.expected
    wanted = {
        "received": load.messages + own_readings,
        "accepted": expected["accepted"],
        "duplicates": expected["duplicates"],
        "dead_lettered": expected["dead_lettered"] + own_refused,
    }
    findings.expect(
        "the worker's counters moved by what the report expects, received = their sum",
        delta == wanted,
        f"counters moved by {delta}, expected {wanted}",
    )


def check_raw_once(findings: Findings, load: LoadReport, readings: list[Unpacked]) -> None:
    """Each simulated reading reached the raw topics once, by event id (an injected duplicate
    twice, as the device sent it): none was forwarded twice by the bridge."""
    ids = Counter(
        match.group(1).decode(errors="replace")
        for item in readings
        if item.mqtt_topic is not None and (match := _EVENT_ID.search(item.payload, 0, 4096)) is not None
    )
    copies = Counter(str(r["event_id"]) for r in load.detail["per_fault"][faults.DUPLICATE])
    repeated = {event_id: n for event_id, n in ids.items() if n != 1 + copies.get(event_id, 0)}
    # A malformed payload may carry the event id of a reading sent properly: not a repeat.
    malformed = Counter(
        str(r["event_id"]) for r in load.detail["per_fault"][faults.MALFORMED] if r["event_id"]
    )
    repeated = {i: n for i, n in repeated.items() if n != 1 + copies.get(i, 0) + malformed.get(i, 0)}
    framed = sum(1 for item in readings if item.mqtt_topic is not None)
    findings.expect(
        "raw topics: each simulated reading once (an injected duplicate twice), nothing forwarded twice",
        not repeated,
        f"{len(repeated)} event ids not as many times as sent: {list(repeated.items())[:8]}; "
        f"{framed} readings from MQTT on the raw topics, {load.messages} sent",
    )


async def check_influx(territory: Territory, out: Outputs, findings: Findings) -> None:
    """InfluxDB's daily ``energy_consumed_kwh`` of each (commune, sector, carrier) over the run's
    days equals the consumption of the accepted readings, computed from the typed events by the
    rules of docs/indicators.md (a late reading still counts in its day: the daily window is
    where every accepted reading lands)."""
    settings = territory.settings
    no_factor = {
        json.loads(d.payload)["event_id"]
        for d in out.dead
        if d.stage == "indicators" and d.errors[0].type == "no_emission_factor"
    }
    calendar = ZoneCalendar(settings.time_zone)
    stage = expected_indicator_stage(
        out.typed, no_factor, settings.indicator_grace_seconds, territory.registry, calendar
    )
    expected = {(c, s, k): kwh for (c, s, k, _year), kwh in stage.consumed_kwh.items()}
    findings.expect("InfluxDB: the run carries consumption", sum(expected.values()) > 0, "no consumption")
    first, end = days_of_energy(out.typed, calendar)
    deadline = time.monotonic() + 60
    stored: dict[tuple[str, str, str], float] = {}
    wrong: list[str] = []
    while True:
        stored = await asyncio.to_thread(daily_consumption, settings, first, end)
        wrong = [
            f"{series}: {stored.get(series)} kWh in InfluxDB, {kwh:.6f} kWh in the readings"
            for series, kwh in sorted(expected.items())
            if series not in stored or abs(stored[series] - kwh) > 1e-6 * max(1.0, kwh)
        ]
        if not wrong or time.monotonic() > deadline:
            break
        await asyncio.sleep(2)
    for what in wrong:
        findings.fail("InfluxDB: each series' daily consumption is what its accepted readings carry", what)
    findings.summary.append(
        f"InfluxDB: {len(expected)} series, {sum(expected.values()):.3f} kWh expected, "
        f"{sum(stored.get(s, 0.0) for s in expected):.3f} kWh stored"
    )


def days_of_energy(typed: Sequence[Typed], calendar: Calendar) -> tuple[datetime, datetime]:
    """The start of the first and the end of the last local day (the worker's ``calendar``) a
    run's energy readings count in: the daily sums
    are read on those days only, as another scenario's run may have written the next day
    (every scenario picks its day at random; CI on 7b7e2bc and a local run each found a
    neighbour's day added to theirs, 1.3 to 2.1 times the readings' consumption)."""
    instants = [
        t.event.interval_start or t.event.event_time for t in typed if isinstance(t.event, EnergyReading)
    ]
    first, end = (
        calendar.day(int(min(instants).timestamp()))[0],
        calendar.day(int(max(instants).timestamp()))[1],
    )
    return datetime.fromtimestamp(first, UTC), datetime.fromtimestamp(end, UTC)


def daily_consumption(
    settings: Settings, start: datetime, stop: datetime
) -> dict[tuple[str, str, str], float]:
    """Σ of the daily ``energy_consumed_kwh`` points between ``start`` and ``stop``, per
    (commune, sector, carrier), as InfluxDB returns them to the readers."""
    target = influx_read_target(settings)
    begin, end = (t.isoformat().replace("+00:00", "Z") for t in (start, stop))
    query = f'''from(bucket: "{settings.influx_bucket}") |> range(start: {begin}, stop: {end})
  |> filter(fn: (r) => r._measurement == "energy_consumed_kwh" and r.window == "1d" and r._field == "value")
  |> group(columns: ["commune", "sector", "carrier"]) |> sum()'''
    with InfluxDBClient(url=target.url, token=target.token, org=target.org) as client:
        tables = client.query_api().query(query)
    return {
        (str(r["commune"]), str(r["sector"]), str(r["carrier"])): float(r.get_value())
        for t in tables
        for r in t.records
    }


async def raw_records_after(kafka: KafkaAccess, offsets: dict[TopicPartition, int]) -> list[RawRecord]:
    """The raw records written after ``offsets``, with their headers (the bridge's frames say
    so in one), in each partition's order."""
    return [
        RawRecord(r.topic, r.partition, r.offset, r.key, r.value or b"", list(r.headers))
        for r in await consumer_records_after(kafka, offsets, idle_seconds=10.0)
    ]
