"""The soak (issue 19): the simulated territory through the whole service at a steady rate for a
long time, watching whether memory creeps, lag grows, or anything is lost.

`zerocarbon simulate` publishes over MQTT at ``--rate`` readings/s (default 2 000) for
``--minutes`` (default 30), with 1 % malformed and 1 % duplicated readings, through
`zerocarbon bridge`, `worker` and `sink` started as the benchmarks start them
(``service_processes.py``: a bridge client id, consumer groups and InfluxDB buckets of the
run's own). Every ``--sample-seconds`` (default 60) it samples, and prints as a table row:
the RSS and the CPU used since the last sample of the bridge, the worker, the sink, the load
and the stack's Kafka, Mosquitto and InfluxDB; the lag of the worker's group on the raw and
typed topics and of the sink's group on zc.indicators; the messages Mosquitto's store holds.
When the load stops it waits for every group to reach the end of its topics, then judges
(``soak_verdict.py``):

- memory: the RSS of the bridge, the worker and the sink grew by less than 5 % between the
  first sample after ``--warmup-minutes`` (default 5) and the last sample under load;
- lag bounded: after the warm-up, each group's largest lag in the second half exceeds its
  largest in the first half by at most ``--lag-tolerance-seconds`` (default 10) of its
  topics' traffic, and every group drains to the end of its topics within
  ``--settle-seconds`` of the load's end;
- reconciliation: the worker's /counters moved by exactly what the simulator's report says
  validation should accept, dead-letter and count as duplicates, and ``received`` by every
  message published, the sum of those three.

With ``--backfill N`` (issue 20), ``--backfill-after-minutes`` into the load a second
simulator publishes N readings of history of the same devices (from ``--backfill-days`` ago,
at ``--backfill-rate``): devices back online with their backlog, every reading late for its
partition; the reconciliation counts both simulators' readings. The live load's device time
runs far faster than the wall clock (about 314 times, 13 days an hour, at 2 000 readings/s
from 5 000 devices), so how late its figures are cannot be read as a distance to the wall
clock: a live probe (``live_probe.py``, ``--probe-interval``, on by default) publishes one
reading a second over MQTT, as a device does, and finds each one's first update on
zc.indicators; the delay, per phase of the soak (warm-up, load, backfill, after backfill),
is printed with the verdict, a column of the table follows it sample by sample. Its
readings are stamped in the past, in a series of their own, so that they change nothing of
the simulated readings' fate (``probe_latency.py``), and they are reconciled too.

Prints the table and the verdict, saves them as JSON in bench/results/soak-<UTC time>.json
(``--results DIR`` elsewhere) and exits 0 if the soak passed, 1 if not. It runs on the
isolated instance of the stack and holds its lock (tests wait for it, it waits for them).
SIGINT or SIGTERM stops the load and the three services, forgets the bridge's MQTT session,
removes the run's buckets and tokens, and saves what was sampled so far.

Example (set-up and drain add a few minutes to the load's):
  .venv/bin/python bench/soak.py --minutes 4 --warmup-minutes 1 --sample-seconds 20
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any

from bench_topics import (
    BENCH_WORKER_ID,
    declare_catalogue,
    forget_indicator_state,
    service_groups,
    skip_suite_records,
)
from end_to_end import delete_buckets
from live_probe import LiveProbe, probe_device
from machine import describe
from mosquitto_store import MosquittoStoreWatcher
from probe_latency import live_phase, summary
from results_file import save_results
from service_processes import (
    SinkTarget,
    forget_bridge,
    forget_sink_target,
    prepare_sink_target,
    stack_pids,
    start_bridge,
    start_sink,
    start_worker,
    stop,
)
from soak_options import parse_args
from soak_sampling import LagStage, ProcessSampler, stage_lags
from soak_table import HEADER, SERVICES, STAGES, markdown, sample_row
from soak_verdict import verdict

from config.settings import Settings
from reference.loader import ReferenceData, load_reference
from schemas.catalogue import INDICATOR_TOPIC, raw_topic, valid_topic
from schemas.families import FAMILIES
from sensors.fleet import build_fleet
from sensors.simulation_run import SimulationPlan, default_start
from stack import control, isolated_stack
from stack.influx_provisioning import InfluxProvisioning
from zerocarbon.component_configs import stack_config
from zerocarbon.demo import validation_totals, worker_counters

FAULTS = ("--malformed", "0.01", "--duplicate", "0.01")
"""So that validation's three outcomes are all exercised and reconciled."""
DAY = 86400
PROBE_MATCH_SECONDS = 60
"""How long the probe may still wait for its last readings' updates once every group drained."""


class Stopped(BaseException):
    """SIGINT or SIGTERM: stop what the soak started, save what it sampled."""


def _on_signal(signum: int, _frame: FrameType | None) -> None:
    raise Stopped(signal.Signals(signum).name)


def _log(message: str) -> None:
    print(f"[soak] {message}", flush=True)


def _stages(sink_group: str) -> list[LagStage]:
    return [
        LagStage("raw", BENCH_WORKER_ID, tuple(raw_topic(f) for f in FAMILIES)),
        LagStage("typed", BENCH_WORKER_ID, tuple(valid_topic(f) for f in FAMILIES)),
        LagStage("indicators", sink_group, (INDICATOR_TOPIC,)),
    ]


async def _settle(settings: Settings, stages: list[LagStage], timeout: float) -> float | None:
    """Until every group has committed the end of its topics and nothing new came for 2 s; the
    seconds it took, None after ``timeout``."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        lags = await stage_lags(settings, stages)
        if all(lag["records"] == 0 for lag in lags.values()):
            await asyncio.sleep(2)
            again = await stage_lags(settings, stages)
            if again == lags:
                return time.monotonic() - started
            continue
        await asyncio.sleep(1)
    return None


class Soak:
    """One soak run: its options, what it started (to stop it), its samples."""

    def __init__(self, args: argparse.Namespace, settings: Settings, folder: Path) -> None:
        self.args, self.settings, self.folder = args, settings, folder
        self.run = uuid.uuid4().hex[:8]
        self.bridge_id = f"zc-bench-soak-bridge-{self.run}"
        self.target = SinkTarget(
            f"zc-bench-sink-soak-{self.run}", f"bench_soak_{self.run}", f"bench_soak_{self.run}_1m",
            folder / "sink-spool", folder / "influx-tokens",
        )  # fmt: skip
        self.stages = _stages(self.target.group)
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.load: subprocess.Popen[bytes] | None = None
        self.backfill: subprocess.Popen[bytes] | None = None
        self.backfill_report: dict[str, Any] | None = None
        self.setup: InfluxProvisioning | None = None
        self.watcher: MosquittoStoreWatcher | None = None
        self.samples: list[dict[str, Any]] = []
        self.report: dict[str, Any] | None = None
        self.moved: dict[str, int] | None = None
        self.drained_after: float | None = None
        self.probe: LiveProbe | None = None
        self.probe_marks: list[tuple[float, str]] = []  # (epoch, phase) as the probe's figures split
        self.indicators_moved: dict[str, int] | None = None

    # -- the run ---------------------------------------------------------------------------
    def start(self) -> ProcessSampler:
        """The registry, a fresh indicator state, the three services, the store watcher."""
        s, folder = self.settings, self.folder
        registry = folder / "reference"
        _zerocarbon("simulate", "--devices", str(self.args.devices), "--write-registry", str(registry))
        if self.args.probe_interval > 0:
            reference = load_reference(registry)
            self.probe = LiveProbe(
                s, probe_device(reference), self.probe_anchor(reference), self.run,
                interval=self.args.probe_interval,
            )  # fmt: skip
        for family in FAMILIES:
            asyncio.run(forget_indicator_state(s, family))
        self.setup = prepare_sink_target(s, self.target)
        self.procs["bridge"] = start_bridge(folder / "bridge.log", self.bridge_id)
        self.procs["worker"] = start_worker(s, folder / "worker.log", registry)
        self.procs["sink"] = start_sink(s, folder / "sink.log", self.target)
        _log(f"bridge, worker and sink ready; logs in {folder}")
        self.watcher = MosquittoStoreWatcher(s, f"zc-bench-soak-sys-{self.run}").start()
        return ProcessSampler({**{n: p.pid for n, p in self.procs.items()}, **stack_pids(s)})

    def probe_anchor(self, reference: ReferenceData) -> float:
        """A day behind every event time the simulators will send: the live load's start (as
        `zerocarbon simulate` chooses it, a moment later, so later than this) and the backfill's."""
        a, now = self.args, time.time()
        plan = SimulationPlan(devices=a.devices, seed=a.seed, rate=a.rate, duration=a.minutes * 60)
        earliest = default_start(plan, build_fleet(a.devices, list(reference.communes.values())), now)
        if a.backfill:
            earliest = min(earliest, now - a.backfill_days * DAY)
        return earliest - DAY

    def start_load(self) -> None:
        a = self.args
        out = (self.folder / "simulate.json").open("wb")
        err = (self.folder / "simulate.log").open("wb")
        self.load = subprocess.Popen(
            [sys.executable, "-m", "zerocarbon.cli", "simulate", "--devices", str(a.devices),
             "--rate", str(a.rate), "--duration", str(a.minutes * 60), "--seed", str(a.seed),
             "--publisher", a.publisher, *FAULTS],
            stdin=subprocess.DEVNULL, stdout=out, stderr=err,
        )  # fmt: skip
        out.close()
        err.close()

    def start_backfill(self) -> subprocess.Popen[bytes]:
        """History of the same devices (their registry is the live load's): event ids are the
        device and its time, so none repeats a live one."""
        a = self.args
        start = datetime.now(UTC) - timedelta(days=a.backfill_days)
        out = (self.folder / "backfill.json").open("wb")
        err = (self.folder / "backfill.log").open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "zerocarbon.cli", "simulate", "--devices", str(a.devices),
             "--rate", str(a.backfill_rate), "--count", str(a.backfill), "--seed", str(a.seed),
             "--start", start.isoformat(timespec="seconds"), "--publisher", a.publisher],
            stdin=subprocess.DEVNULL, stdout=out, stderr=err,
        )  # fmt: skip
        out.close()
        err.close()
        return proc

    def sample(self, sampler: ProcessSampler, t0: float, phase: str) -> None:
        s = self.settings
        at = time.monotonic()
        try:
            received: int | None = validation_totals(worker_counters(s))["received"]
        except OSError as exc:  # a slow answer under load must not end a 30-minute run
            _log(f"the worker's /counters did not answer: {exc!r}")
            received = None
        previous = self.samples[-1] if self.samples else None
        rate = None
        if received is not None and previous is not None and previous["worker_received"] is not None:
            rate = (received - previous["worker_received"]) / max(1e-9, at - t0 - previous["t_seconds"])
        store = self.watcher.latest() if self.watcher is not None else {}
        sample = {
            "t_seconds": round(at - t0, 1),
            "phase": phase,
            "processes": sampler.sample(),
            "lag": asyncio.run(stage_lags(s, self.stages)),
            "worker_received": received,
            "worker_readings_per_second": round(rate) if rate is not None else None,
            "mosquitto_store_messages": store.get("count"),
            "mosquitto_retained_messages": store.get("retained"),
        }
        if self.probe is not None:
            fresh = [d["indicators"] for d in self.probe.fresh_delays()]
            sample["probe_delay_seconds"] = summary(fresh)
        self.samples.append(sample)
        print(sample_row(sample), flush=True)

    def soak(self) -> None:
        a = self.args
        sampler = self.start()
        counters_before = worker_counters(self.settings)
        before = validation_totals(counters_before)
        self.start_load()
        assert self.load is not None
        sampler.add("load", self.load.pid)
        t0 = time.monotonic()
        _log(f"load started: {a.rate:g} readings/s for {a.minutes:g} min, {a.devices} devices")
        print(HEADER, flush=True)
        self.sample(sampler, t0, "start")
        if self.probe is not None:
            self.probe.start()
            _log(
                f"live probe: {self.probe.device.topic} every {a.probe_interval:g} s, stamped from "
                f"{datetime.fromtimestamp(self.probe.anchor, UTC):%Y-%m-%d %H:%M} UTC back"
            )
        k = 1
        while self.load.poll() is None or (self.backfill is not None and self.backfill.poll() is None):
            elapsed = time.monotonic() - t0
            self.mark_probe_phase(elapsed)
            if a.backfill and self.backfill is None and elapsed >= a.backfill_after_minutes * 60:
                self.backfill = self.start_backfill()
                sampler.add("backfill", self.backfill.pid)
                _log(f"backfill: {a.backfill} readings from {a.backfill_days:g} d ago, {a.backfill_rate:g}/s")
            if elapsed >= k * a.sample_seconds:
                phase = "load" if self.backfill is None or self.backfill.poll() is not None else "backfill"
                self.sample(sampler, t0, phase)
                k += 1
            time.sleep(0.2)
        load_end = time.monotonic()
        probe_report = self.probe.stop_publishing() if self.probe is not None else None
        if self.load.returncode != 0:
            log = (self.folder / "simulate.log").read_text()[-2000:]
            raise RuntimeError(f"simulate exited {self.load.returncode}: {log}")
        self.report = json.loads((self.folder / "simulate.json").read_text())
        if self.backfill is not None:
            if self.backfill.returncode != 0:
                log = (self.folder / "backfill.log").read_text()[-2000:]
                raise RuntimeError(f"the backfill's simulate exited {self.backfill.returncode}: {log}")
            self.backfill_report = json.loads((self.folder / "backfill.json").read_text())
            self.report = combined_report(self.report, self.backfill_report)
        if self.probe is not None:
            if probe_report is None:
                raise RuntimeError(f"the live probe did not say what it published: {self.probe.error}")
            self.report = combined_report(self.report, probe_report)
        _log(f"load done: {self.report['messages']} messages; waiting for every group to drain")
        settled = asyncio.run(_settle(self.settings, self.stages, a.settle_seconds))
        self.drained_after = round(time.monotonic() - load_end, 1) if settled is not None else None
        self.sample(sampler, t0, "after")
        counters_after = worker_counters(self.settings)
        after = validation_totals(counters_after)
        self.moved = {name: after[name] - before[name] for name in after}
        self.indicators_moved = _moved(counters_before["indicators"], counters_after["indicators"])
        if self.probe is not None:
            self.probe.finish(PROBE_MATCH_SECONDS)
            found, published = len(self.probe.matcher.matched), len(self.probe.matcher.readings)
            _log(f"live probe: {found} of {published} readings found on zc.indicators")

    def mark_probe_phase(self, elapsed: float) -> None:
        """Note when the phase the probe's delays are split by changes."""
        a, backfill = self.args, self.backfill
        assert self.load is not None
        phase = live_phase(
            elapsed, a.warmup_minutes * 60, self.load.poll() is None, backfill is not None,
            backfill is not None and backfill.poll() is None,
        )  # fmt: skip
        if not self.probe_marks or self.probe_marks[-1][1] != phase:
            self.probe_marks.append((time.time(), phase))

    # -- the end ---------------------------------------------------------------------------
    def clean_up(self, groups_before: dict[str, Any]) -> dict[str, Any]:
        """Stop everything the soak started and leave the stack as the service expects it; each
        step runs even if an earlier one failed."""
        done: dict[str, Any] = {}
        steps: list[tuple[str, Callable[[], Any]]] = [
            ("live probe stopped", lambda: self.probe.close() if self.probe else None),
            ("store watcher stopped", lambda: self.watcher.stop() if self.watcher else None),
            ("load stopped", lambda: _stop_load(self.load)),
            ("backfill stopped", lambda: _stop_load(self.backfill)),
            *[(f"{name} stopped", lambda p=proc: stop(p)) for name, proc in reversed(self.procs.items())],
            ("bridge session forgotten", lambda: forget_bridge(self.settings, self.bridge_id)),
            ("sink tokens revoked", lambda: forget_sink_target(self.setup) if self.setup else None),
            ("buckets deleted", lambda: delete_buckets(
                self.settings, [self.target.bucket, self.target.minute_bucket])),
            ("indicator state started afresh", lambda: [
                asyncio.run(forget_indicator_state(self.settings, f)) for f in FAMILIES]),
            ("service groups moved past the soak's records", lambda: {
                group: asyncio.run(skip_suite_records(self.settings, group, committed, groups_before["ends"]))
                for group, committed in groups_before["committed"].items()}),
        ]  # fmt: skip
        for name, step in steps:
            try:
                result = step()
                done[name] = result if isinstance(result, dict) else True
            except Exception as exc:
                done[name] = f"failed: {exc!r}"
                _log(f"clean-up step '{name}' failed: {exc!r}")
        return done

    def results(self) -> dict[str, Any]:
        a = self.args
        judged = (
            verdict(
                self.samples, a.warmup_minutes * 60, SERVICES, STAGES, self.drained_after, self.report,
                self.moved, a.lag_tolerance_seconds,
            )
            if self.report is not None
            else None
        )  # fmt: skip
        return {
            "soak": "zerocarbon soak (bench/soak.py)",
            "when": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": describe(),
            "options": {
                "minutes": a.minutes, "rate": a.rate, "devices": a.devices,
                "warmup_minutes": a.warmup_minutes,
                "sample_seconds": a.sample_seconds, "settle_seconds": a.settle_seconds,
                "lag_tolerance_seconds": a.lag_tolerance_seconds, "seed": a.seed, "publisher": a.publisher,
                "faults": dict(zip(FAULTS[::2], map(float, FAULTS[1::2]), strict=True)),
                "backfill": a.backfill, "backfill_rate": a.backfill_rate,
                "backfill_after_minutes": a.backfill_after_minutes, "backfill_days": a.backfill_days,
                "probe_interval": a.probe_interval,
            },
            "backfill_report": self.backfill_report,
            "live_probe": self.probe.results(self.probe_marks) if self.probe is not None else None,

            "groups": {stage.name: {"group": stage.group, "topics": stage.topics} for stage in self.stages},
            "samples": self.samples,
            "simulator_report": self.report,
            "worker_counters_moved": self.moved,
            "worker_indicator_counters_moved": self.indicators_moved,
            "drained_after_load_seconds": self.drained_after,
            "verdict": judged,
            "passed": bool(judged and judged["passed"]),
            "logs": str(self.folder),
        }  # fmt: skip


def combined_report(live: dict[str, Any], other: dict[str, Any]) -> dict[str, Any]:
    """One report for the reconciliation: what the live simulator and another publisher (the
    backfill's simulator, the live probe) published and expect."""
    expected = {
        name: live["expected_at_validation"][name] + other["expected_at_validation"].get(name, 0)
        for name in live["expected_at_validation"]
    }
    return {
        **live,
        "messages": live["messages"] + other["messages"],
        "acknowledged": live["acknowledged"] + other["acknowledged"],
        "expected_at_validation": expected,
    }


def _moved(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {name: after.get(name, 0) - before.get(name, 0) for name in sorted({*before, *after})}


def _stop_load(load: subprocess.Popen[bytes] | None) -> None:
    if load is not None and load.poll() is None:
        load.terminate()
        try:
            load.wait(15)
        except subprocess.TimeoutExpired:
            load.kill()
            load.wait()


def _zerocarbon(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "zerocarbon.cli", *args], capture_output=True, text=True, timeout=300
    )
    if done.returncode != 0:
        raise RuntimeError(f"zerocarbon {' '.join(args)} exited {done.returncode}: {done.stderr[-2000:]}")
    return done.stdout


def main() -> int:
    args = parse_args(description=__doc__)
    # The soak moves consumer groups and writes checkpoints: it runs on the isolated instance
    # of the stack, never on one a person runs, and waits for its lock.
    isolated_stack.enter()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _on_signal)
    settings = Settings()
    control.up(stack_config(settings))
    asyncio.run(declare_catalogue(settings))  # also grants the bench sink groups
    groups_before = service_groups(settings)
    folder = Path(tempfile.mkdtemp(prefix="zc-bench-soak-"))
    soak = Soak(args, settings, folder)
    stopped: str | None = None
    error: str | None = None
    try:
        soak.soak()
    except Stopped as signalled:
        stopped = str(signalled)
        _log(f"{stopped}: stopping everything the soak started")
    except Exception as exc:
        error = repr(exc)
        _log(f"failed: {exc!r}")
    finally:
        # A second signal must not cut the clean-up short (stray bridges pollute the stack).
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, signal.SIG_IGN)
        cleaned = soak.clean_up(groups_before)
    results = soak.results()
    results.update({"stopped_by": stopped, "error": error, "clean_up": cleaned})
    table = markdown(results)
    results["table_markdown"] = table
    print(table, flush=True)
    save_results("soak", results, args.results)
    if results["passed"] and not args.keep_logs:
        shutil.rmtree(folder, ignore_errors=True)
    else:
        _log(f"logs kept in {folder}")
    if stopped is not None:
        return 130
    return 0 if results["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
