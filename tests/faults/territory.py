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
  a random one per run, and the reconciliation reads back the days its readings fall on only;
- the bridge has a client id of its own (its MQTT session is forgotten at the end), the sink
  the deployment's consumer group moved to the end of zc.indicators, and a spool folder of its own.

The handles: ``territory.worker``, ``.bridge`` and ``.sink`` (``ServiceProcess``: ``stop``,
``kill``, ``start``, ``restart``; they block, call them through ``asyncio.to_thread``), and
``territory.stack_service("kafka" | "mosquitto" | "influxdb")``. A stack service a scenario
left stopped is started again on the way out.

The reconciliation is tests/faults/reconciliation.py.
"""

from __future__ import annotations

import asyncio
import json
import random
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any

from aiokafka.structs import TopicPartition

from config.kafka_access import KafkaAccess
from config.settings import Settings
from schemas.catalogue import DEAD_LETTER_TOPIC, INDICATOR_TOPIC, raw_topic, valid_topic
from schemas.families import FAMILIES
from stack import control
from stack.service import LocalService
from stack.stack_config import StackConfig
from streams.kafka_admin import committed_offsets, start_group_at_end, topic_ends
from tests.e2e.fault_checks import Findings
from tests.e2e.test_fault_reconciliation import fresh_worker
from tests.faults.reconciliation import check_influx, collect_outputs, reconcile_kafka
from tests.integration.conftest import forget_bridge_session
from zerocarbon.demo import worker_counters
from zerocarbon.processes import start_service, stop_child

DEVICES = 3000
"""Enough devices that 2 000 readings/s span a few simulated hours, not days (one day holds a run)."""
FAULT_RATES = {"--malformed": 0.02, "--duplicate": 0.02}
"""Faults every load carries, so that validation's three outcomes are all exercised."""
SETTLE_TIMEOUT = 180.0
"""How long the pipeline may take to drain after the load, before the reconciliation fails."""


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
        # The deployment's group, moved to the end of zc.indicators: Kafka's start grants each
        # principal exactly its role's ACLs, so a group granted for the run would be withdrawn
        # by a scenario restarting Kafka (its sink then died on GroupAuthorizationFailedError).
        self.sink_group = settings.sink_group
        self.sink = ServiceProcess(
            ["sink"], workdir / "sink.log", {"ZC_SINK_SPOOL_DIR": str(workdir / "spool")}
        )
        self.starts: dict[TopicPartition, int] = {}
        self.counters_before: dict[str, Any] = {}
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
        await asyncio.to_thread(forget_bridge_session, self.bridge_id)

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


def _zerocarbon(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "zerocarbon.cli", *args], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout
