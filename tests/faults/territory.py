"""The fault suite's harness (issue 19): a simulated territory under load through a worker, a
bridge and a sink of the scenario's own, the handles a scenario breaks things with, and the
reconciliation that says, at the end, whether anything was lost or counted twice.

A scenario reads::

    async with Territory(settings, kafka_admin, stack_config, tmp_path) as territory:
        load = await territory.start_load(count=40_000)
        ...                                   # break something while ``load`` runs
        report = await load.finished()
        await territory.reconcile(report)     # AssertionError listing every discrepancy

What it isolates, so that a run is judged on its own readings only:

- the worker's groups start at the ends of the raw and typed topics, and the indicator state
  of every typed partition is checkpointed empty there (``fresh_worker``);
- the simulated readings fall on a day 2 to 25 days ago (validation takes up to 400 days),
  a random one per run: the daily windows the reconciliation reads back are this run's;
- the bridge has a client id of its own (its MQTT session is forgotten at the end), the sink a
  consumer group of its own starting at the end of zc.indicators, and a spool folder of its own.

The handles: ``territory.worker``, ``.bridge`` and ``.sink`` (``ServiceProcess``: ``stop``,
``kill``, ``start``, ``restart``; they block, call them through ``asyncio.to_thread``), and
``territory.stack_service("kafka" | "mosquitto" | "influxdb")``. A stack service a scenario
left stopped is started again on the way out.

The reconciliation counts from Kafka rather than from the worker's counters (a restarted
worker's counters start again from 0): the readings in the raw records since the start
(unpacked as the worker unpacks them), the events on the typed topics, the dead letters; the
worker's counters are compared too when one worker ran from start to end. In InfluxDB it reads
the daily windows: a reading later than its 1-minute window's grace (an hourly meter's interval
starts an hour before its event time) is left out of its hour and still counts in its day.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition
from influxdb_client import InfluxDBClient

from config.kafka_access import KafkaAccess
from config.settings import Settings
from schemas.catalogue import DEAD_LETTER_TOPIC, INDICATOR_TOPIC, raw_topic, valid_topic
from schemas.dead_letter import DeadLetter
from schemas.families import FAMILIES
from schemas.kafka_principals import SINK as SINK_PRINCIPAL
from schemas.kafka_principals import KafkaAcl, sink_acls
from sensors import faults
from stack import control
from stack.service import LocalService
from stack.stack_config import StackConfig
from streams.kafka_admin import committed_offsets, records_after, start_group_at_end, topic_ends
from streams.validation.raw_records import RawRecord, Unpacked, unpack
from tests.e2e.fault_checks import Findings, check_malformed, check_typed
from tests.e2e.fault_expectations import Typed, expected_indicator_stage, typed_events
from tests.e2e.test_fault_reconciliation import fresh_worker
from zerocarbon.component_configs import influx_read_target
from zerocarbon.demo import validation_totals, worker_counters
from zerocarbon.processes import start_service, stop_child

DEVICES = 3000
"""Enough devices that 2 000 readings/s span a few simulated hours, not days (one day holds a run)."""
FAULT_RATES = {"--malformed": 0.02, "--duplicate": 0.02}
"""Faults every load carries, so that validation's three outcomes are all exercised."""
SETTLE_TIMEOUT = 180.0
"""How long the pipeline may take to drain after the load, before the reconciliation fails."""
_EVENT_ID = re.compile(rb'"event_id"\s*:\s*"([^"\\]*)"')


def past_day_start(rng: random.Random) -> datetime:
    """01:00 UTC on a random day 2 to 25 days ago: old enough that no other test writes its
    daily windows, recent enough for the 1-minute bucket's 30-day retention."""
    midnight = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight - timedelta(days=rng.randint(2, 25)) + timedelta(hours=1)


class ServiceProcess:
    """A `zerocarbon <command>` the scenario started: stop it, kill it, start it again.

    ``start`` returns once the command says it is ready; ``stop`` is SIGTERM (then SIGKILL
    after 20 s), ``kill`` SIGKILL at once. ``restarts`` counts starts after the first, ``kills``
    the SIGKILLs: the reconciliation needs to know whether one process ran throughout.
    """

    def __init__(self, args: list[str], log: Path, env: dict[str, str] | None = None) -> None:
        self.args, self.log, self.env = args, log, env
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.kills = 0

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def restarts(self) -> int:
        return max(0, self.starts - 1)

    def adopt(self, proc: subprocess.Popen[bytes]) -> None:
        """Take over a process started elsewhere (``fresh_worker``'s)."""
        self.proc, self.starts = proc, self.starts + 1

    def start(self) -> None:
        self.proc = start_service(self.args, self.log, self.env)
        self.starts += 1

    def stop(self) -> int | None:
        """SIGTERM and wait; the exit code (None if it was not running)."""
        if self.proc is None:
            return None
        return stop_child(self.proc)

    def kill(self) -> None:
        """SIGKILL: no goodbye, no commit, no checkpoint."""
        if self.running:
            assert self.proc is not None
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
            self.kills += 1

    def restart(self) -> None:
        self.stop()
        self.start()


@dataclass(frozen=True)
class ExpectedLetter:
    """A payload a scenario sent besides the simulated load, and where it must end: a dead
    letter of ``stage`` whose first error is ``reason`` (e.g. validation/invalid_utf8,
    bridge/kafka_refused). ``readings``: how many readings the worker unpacks from it (a raw
    Kafka record that is an array holds several)."""

    name: str
    payload: bytes
    stage: str
    reason: str
    readings: int = 1


@dataclass
class LoadReport:
    """What `zerocarbon simulate` printed, and the faulty messages it listed (--report-events)."""

    report: dict[str, Any]
    detail: dict[str, Any]

    @property
    def expected(self) -> dict[str, int]:
        return dict(self.report["expected_at_validation"])

    @property
    def messages(self) -> int:
        return int(self.report["messages"])


class Load:
    """`zerocarbon simulate` running in the background."""

    def __init__(self, proc: asyncio.subprocess.Process, events_file: Path) -> None:
        self.proc, self.events_file = proc, events_file
        self._output: asyncio.Task[tuple[bytes, bytes]] = asyncio.create_task(proc.communicate())

    @property
    def done(self) -> bool:
        return self._output.done()

    def stop(self) -> None:
        """SIGKILL the simulator if it still runs (a scenario that gave up)."""
        if self.proc.returncode is None:
            self.proc.kill()

    async def finished(self, timeout: float = 300) -> LoadReport:
        """The simulator's report once it has published everything and had it acknowledged."""
        stdout, stderr = await asyncio.wait_for(asyncio.shield(self._output), timeout)
        assert self.proc.returncode == 0, f"simulate exited {self.proc.returncode}: {stderr.decode()[-3000:]}"
        report: dict[str, Any] = json.loads(stdout)
        assert report["acknowledged"] == report["messages"], report
        return LoadReport(report, json.loads(self.events_file.read_text()))


class Territory:
    """A worker, a bridge and a sink of the scenario's own, under a simulated load; see the
    module's docstring. ``worker``, ``bridge`` and ``sink`` are ``ServiceProcess``es;
    ``stack_service("kafka" | "mosquitto" | "influxdb")`` the stack's services."""

    def __init__(
        self,
        settings: Settings,
        kafka: KafkaAccess,
        stack_config: StackConfig,
        workdir: Path,
        *,
        devices: int = DEVICES,
        seed: int | None = None,
    ) -> None:
        self.settings, self.kafka, self.stack_config, self.workdir = settings, kafka, stack_config, workdir
        self.devices = devices
        self.seed = seed if seed is not None else random.randrange(1 << 30)
        self.rng = random.Random(self.seed)
        self.run_id = uuid.uuid4().hex[:8]
        self.registry = workdir / "reference"
        self.simulated_start = past_day_start(self.rng)
        self.worker = ServiceProcess(
            ["worker"], workdir / "worker.log", {"ZC_REFERENCE_DIR": str(self.registry)}
        )
        self.bridge_id = f"zc-faults-{self.run_id}"
        self.bridge = ServiceProcess(["bridge", "--client-id", self.bridge_id], workdir / "bridge.log")
        self.sink_group = f"zc-faults-sink-{self.run_id}"
        self.sink = ServiceProcess(
            ["sink"],
            workdir / "sink.log",
            {"ZC_SINK_GROUP": self.sink_group, "ZC_SINK_SPOOL_DIR": str(workdir / "spool")},
        )
        self.starts: dict[TopicPartition, int] = {}
        self.counters_before: dict[str, Any] = {}
        self._granted = False
        self._loads: list[Load] = []

    # -- set-up and tear-down ----------------------------------------------------------
    async def __aenter__(self) -> Territory:
        print(f"territory seed {self.seed}, simulated start {self.simulated_start.isoformat()}")
        await asyncio.to_thread(
            _zerocarbon, "simulate", "--devices", str(self.devices), "--write-registry", str(self.registry)
        )
        try:
            self.worker.adopt(await fresh_worker(self.kafka, self.settings, self.worker.log, self.registry))
            await asyncio.to_thread(self.bridge.start)
            await start_group_at_end(self.kafka, self.sink_group, [INDICATOR_TOPIC])
            await _grant_sink(self.settings, self.sink_group, add=True)
            self._granted = True
            await asyncio.to_thread(self.sink.start)
            self.counters_before = worker_counters(self.settings)
            self.starts = await topic_ends(self.kafka, self.topics())
        except BaseException:
            await self.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for load in self._loads:
            load.stop()  # a scenario that failed half-way leaves no simulator publishing
        for service in self.stack_services():
            if not service.process.is_running():  # a scenario failed before putting it back
                await asyncio.to_thread(service.start)
                await asyncio.to_thread(service.wait_ready)
        for process in (self.bridge, self.sink, self.worker):
            await asyncio.to_thread(process.stop)
        if self._granted:
            await _grant_sink(self.settings, self.sink_group, add=False)
        await asyncio.to_thread(
            subprocess.run,
            [
                sys.executable,
                "-m",
                "zerocarbon.cli",
                "bridge",
                "--forget-session",
                "--client-id",
                self.bridge_id,
            ],
            capture_output=True,
            timeout=60,
        )

    def topics(self) -> list[str]:
        """Every topic the reconciliation reads from the start offsets on."""
        return [
            *(raw_topic(name) for name in FAMILIES),
            *(valid_topic(name) for name in FAMILIES),
            DEAD_LETTER_TOPIC,
            INDICATOR_TOPIC,
        ]

    def stack_services(self) -> list[LocalService]:
        return control.services(self.stack_config)

    def stack_service(self, name: str) -> LocalService:
        """The stack's ``kafka``, ``mosquitto`` or ``influxdb``: ``stop()``, ``start()`` then
        ``wait_ready()``, ``process.pid`` to signal it."""
        return next(service for service in self.stack_services() if service.name == name)

    # -- the load ------------------------------------------------------------------------
    async def start_load(self, count: int, rate: float = 2000, extra: Sequence[str] = ()) -> Load:
        """`zerocarbon simulate` of ``count`` readings at ``rate``/s in the background, on the run's
        day, with FAULT_RATES (``extra``: more options)."""
        events_file = self.workdir / f"fault-instances-{self.rng.randrange(1 << 30)}.json"
        rates = [str(arg) for option, rate_ in FAULT_RATES.items() for arg in (option, rate_)]
        args = [
            "simulate", "--devices", str(self.devices), "--count", str(count), "--rate", str(rate),
            "--seed", str(self.rng.randrange(1 << 30)), "--start", self.simulated_start.isoformat(),
            "--report-events", str(events_file), *rates, *extra,
        ]  # fmt: skip
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "zerocarbon.cli", *args,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        load = Load(proc, events_file)
        self._loads.append(load)
        return load

    async def wait_raw_records(self, at_least: int, timeout: float = 60) -> None:
        """Until ``at_least`` raw records have reached Kafka since the start: the load is flowing."""
        deadline = time.monotonic() + timeout
        raw = [raw_topic(name) for name in FAMILIES]
        while True:
            ends = await topic_ends(self.kafka, raw)
            if sum(end - self.starts[tp] for tp, end in ends.items()) >= at_least:
                return
            assert time.monotonic() < deadline, f"fewer than {at_least} raw records after {timeout:.0f}s"
            await asyncio.sleep(0.2)

    # -- the end ---------------------------------------------------------------------------
    async def settle(self, timeout: float = SETTLE_TIMEOUT) -> None:
        """Until the worker has consumed every raw and typed record, and the sink every
        indicator update, with nothing new for two seconds."""
        deadline = time.monotonic() + timeout
        stages = [
            (self.settings.worker_id, [raw_topic(name) for name in FAMILIES]),
            (self.settings.worker_id, [valid_topic(name) for name in FAMILIES]),
            (self.sink_group, [INDICATOR_TOPIC]),
        ]
        for group, topics in stages:
            while True:
                ends = await topic_ends(self.kafka, topics)
                committed = await committed_offsets(self.kafka, group)
                behind = {
                    tp: end - committed.get(tp, 0) for tp, end in ends.items() if committed.get(tp, 0) < end
                }
                if not behind:
                    await asyncio.sleep(2)
                    if await topic_ends(self.kafka, topics) == ends:
                        break
                    continue
                assert time.monotonic() < deadline, (
                    f"group {group} still behind on {behind} after {timeout:.0f}s"
                )
                await asyncio.sleep(1)

    async def reconcile(self, load: LoadReport, letters: Sequence[ExpectedLetter] = ()) -> Findings:
        """Settle, then check that every published reading was counted once or dead-lettered
        with a reason, and that InfluxDB holds the consumption the accepted readings carry;
        AssertionError listing every discrepancy. ``letters``: the scenario's own payloads."""
        await self.settle()
        out = await collect_outputs(self)
        findings = reconcile_kafka(self, load, letters, out)
        if not findings.failures:  # InfluxDB is only worth reading once Kafka balances
            await check_influx(self, out, findings)
        print(findings.report())
        assert not findings.failures, findings.report()
        return findings


# -- reconciliation -------------------------------------------------------------------------
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
    stage = expected_indicator_stage(
        out.typed, no_factor, settings.indicator_grace_seconds, territory.registry
    )
    expected = {(c, s, k): kwh for (c, s, k, _year), kwh in stage.consumed_kwh.items()}
    findings.expect("InfluxDB: the run carries consumption", sum(expected.values()) > 0, "no consumption")
    day = territory.simulated_start.replace(hour=0)
    deadline = time.monotonic() + 60
    stored: dict[tuple[str, str, str], float] = {}
    wrong: list[str] = []
    while True:
        stored = await asyncio.to_thread(daily_consumption, settings, day, day + timedelta(days=2))
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
    consumer = AIOKafkaConsumer(**kafka.client_options(), max_partition_fetch_bytes=16 << 20)
    await consumer.start()
    out: list[RawRecord] = []
    try:
        consumer.assign(list(offsets))
        ends = await consumer.end_offsets(list(offsets))
        for tp, offset in offsets.items():
            consumer.seek(tp, offset)
        remaining = {tp for tp in offsets if ends[tp] > offsets[tp]}
        while remaining:
            batches = await consumer.getmany(timeout_ms=10_000, max_records=50_000)
            assert batches, f"no raw record for 10 s with {remaining} not read to their end"
            for tp, records in batches.items():
                out += [
                    RawRecord(tp.topic, tp.partition, r.offset, r.key, r.value or b"", list(r.headers))
                    for r in records
                    if r.offset < ends[tp]
                ]
                if records and records[-1].offset >= ends[tp] - 1:
                    remaining.discard(tp)
    finally:
        await consumer.stop()
    return out


def _zerocarbon(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "zerocarbon.cli", *args], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


async def _grant_sink(settings: Settings, group: str, add: bool) -> None:
    """The sink principal may use the run's group; withdrawn, only the group goes (the topics
    in ``sink_acls`` are the principal's own rights, which later sinks still need)."""
    from tests.kafka_grants import grant, withdraw

    if add:
        await grant(settings, SINK_PRINCIPAL, sink_acls(group))
    else:
        await withdraw(settings, SINK_PRINCIPAL, (KafkaAcl("group", group, "read"),))
