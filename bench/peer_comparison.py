"""Our enrichment and aggregation against its peers, on the same input, in the same run.

Three implementations read the same validated readings from Kafka, already written (each
drains the same backlog), and write their window results to Kafka:
- ours: `zerocarbon worker` (the indicator agent: every indicator, 1 min to year-to-date
  windows, derived ratios, producer activity, checkpoints), from zc.valid.energy to
  zc.indicators;
- the Quix Streams peer (``peers/quix_aggregation.py``): the energy indicators per commune x
  sector x carrier on the 1 min, 15 min, 1 h and 1 day windows, from the same records;
- the naive faust baseline (``peers/naive_faust.py``): the same, one reading per message and
  one table update per reading.
Each is timed from its first message to its last reading processed (wall and CPU seconds of
its process). Then every window both ours and a peer closed is compared, value by value.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench_topics import admin_access, create_topic, forget_indicator_state, produce, read_after, topic_ends
from energy_workload import Record
from peer_environment import peer_python
from process_stats import cpu_seconds
from service_processes import start_worker, start_worker_group_at_end, stop

from config.settings import Settings
from reference.loader import load_reference
from schemas.catalogue import INDICATOR_TOPIC, valid_topic
from schemas.local_calendar import MONTH
from schemas.units import KWH_PER_UNIT
from stack.secret_files import write_secret
from streams.indicators.window_assignment import DEFAULT_WINDOWS_SECONDS
from zerocarbon.demo import worker_counters
from zerocarbon.processes import stop_child

PEERS = Path(__file__).resolve().parent / "peers"
ENERGY_INDICATORS = ("energy_consumed_kwh", "emissions_kgco2e")
WINDOW_SECONDS = {"1m": 60, "15m": 900, "1h": 3600, "1d": 86400}
Key = tuple[str, str, str, str, int, int]  # indicator, commune, sector, carrier, size, start


def _key(indicator: str, dims: dict[str, str], size: int, start: int) -> Key:
    return indicator, dims["commune"], dims["sector"], dims["carrier"], size, start


def our_finals(values: Sequence[bytes]) -> dict[Key, float]:
    """The final energy windows among zc.indicators records (the last one of each wins)."""
    finals: dict[Key, float] = {}
    for raw in values:
        if b'"final":true' not in raw or not any(name.encode() in raw for name in ENERGY_INDICATORS):
            continue  # a byte test first: most updates are not final energy windows
        u = json.loads(raw)
        if u["indicator"] in ENERGY_INDICATORS and u["final"] and u["window"] in WINDOW_SECONDS:
            start = int(datetime.fromisoformat(u["window_start"]).timestamp())
            finals[_key(u["indicator"], u["dimensions"], WINDOW_SECONDS[u["window"]], start)] = u["value"]
    return finals


def peer_finals(values: Sequence[bytes]) -> dict[Key, float]:
    rows = (json.loads(raw) for raw in values)
    return {_key(r["indicator"], r["dimensions"], r["size"], r["start"]): r["value"] for r in rows}


def compare(ours: dict[Key, float], peer: dict[Key, float]) -> dict[str, Any]:
    """Windows closed by both, how many hold the same value (relative 1e-9: sums of the same
    terms in another order), and which differ or were closed by one side only."""
    both = ours.keys() & peer.keys()
    differ = sorted(k for k in both if not math.isclose(ours[k], peer[k], rel_tol=1e-9, abs_tol=1e-9))
    return {
        "windows_compared": len(both),
        "equal": len(both) - len(differ),
        "differ": len(differ),
        "first_differences": [[*k, ours[k], peer[k]] for k in differ[:5]],
        "closed_by_ours_only": len(ours.keys() - peer.keys()),
        "closed_by_peer_only": len(peer.keys() - ours.keys()),
    }


def _wait(condition: Callable[[], bool], timeout: float, what: str, interval: float = 0.02) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not done within {timeout:.0f}s")
        time.sleep(interval)


def _counted(settings: Settings) -> int:
    try:
        indicators = worker_counters(settings)["indicators"]
    except OSError:  # the worker's web server is not up yet
        return 0
    return sum(indicators.get(k, 0) for k in ("counted", "late", "duplicate"))


def run_ours(
    settings: Settings, records: Sequence[Record], readings: int, reference_dir: Path, folder: Path
) -> tuple[dict[str, Any], dict[Key, float]]:
    """Our worker draining ``records`` from zc.valid.energy; its rate and its final windows."""
    asyncio.run(forget_indicator_state(settings))
    start_worker_group_at_end(settings)
    since = asyncio.run(topic_ends(settings, [INDICATOR_TOPIC]))
    asyncio.run(produce(settings, valid_topic("energy"), [(p, None, value) for p, value in records]))
    # UTC days, as the peers' tumbling windows cut them: the same windows, compared one by one
    # (its state was started afresh, so it cuts them from its first reading).
    worker = start_worker(
        settings, folder / "worker-peers.log", reference_dir, from_end=False, time_zone="UTC"
    )
    try:
        _wait(lambda: _counted(settings) > 0, 120, "our worker's first reading")
        t0, cpu0 = time.monotonic(), cpu_seconds(worker.pid)
        _wait(lambda: _counted(settings) >= readings, 600, "our worker")
        wall, cpu = time.monotonic() - t0, cpu_seconds(worker.pid) - cpu0
        time.sleep(2.5)  # the next flush sends the windows the last readings closed
    finally:
        stop_child(worker)
    finals = our_finals(asyncio.run(read_after(settings, since)))
    return _rates("ours (zerocarbon worker)", readings, wall, cpu), finals


def _rates(name: str, readings: int, wall: float, cpu: float) -> dict[str, Any]:
    return {
        "implementation": name,
        "readings": readings,
        "wall_seconds": round(wall, 3),
        "cpu_seconds": round(cpu, 3),
        "readings_per_second": round(readings / wall),
        "readings_per_cpu_second": round(readings / cpu) if cpu else None,
    }


def _peer_config(settings: Settings, run: str, name: str, folder: Path, **extra: Any) -> dict[str, Any]:
    ref = load_reference()
    year = datetime.now(UTC).year
    factors = {
        carrier: factor.value
        for carrier in ("electricity", "natural_gas", "heat_network", "heating_oil")
        if (factor := ref.factor("energy", carrier, year)) is not None
    }
    return {
        # The peers are the suite's, not services: they reach Kafka as the admin, which alone
        # may create their internal topics. The file holds its password: see _write_config.
        "kafka": admin_access(settings).librdkafka_properties(),
        "output_topic": f"zc.bench.{name}-out-{run}",
        "state_dir": str(folder / f"{name}-state"),
        "partitions": settings.kafka_partitions,
        "factors": factors,
        "kwh_per_unit": {str(unit): value for unit, value in KWH_PER_UNIT.items()},
        "windows_seconds": [size for size in DEFAULT_WINDOWS_SECONDS if size < MONTH],  # tumbling, UTC
        "grace_seconds": settings.indicator_grace_seconds,
        **extra,
    }


def _write_config(path: Path, config: dict[str, Any]) -> None:
    """A peer's configuration, which holds a Kafka password: readable by its owner only."""
    write_secret(path, json.dumps(config))


def _output(settings: Settings, topic: str) -> list[bytes]:
    ends = asyncio.run(topic_ends(settings, [topic]))
    return asyncio.run(read_after(settings, dict.fromkeys(ends, 0)))


def run_quix(
    settings: Settings, records: Sequence[Record], readings: int, run: str, folder: Path
) -> tuple[dict[str, Any], dict[Key, float]]:
    """The Quix Streams peer draining the same records from a topic of its own."""
    python = peer_python(settings)
    config = _peer_config(
        settings, run, "quix", folder, input_topic=f"zc.bench.quix-in-{run}", group=f"zc.bench.quix-{run}",
        messages=len(records),
    )  # fmt: skip
    for topic in (config["input_topic"], config["output_topic"]):
        asyncio.run(create_topic(settings, topic))
    # Keyed by partition: Quix windows are per message key, and a record holds the readings of
    # several communes of one partition (the series are told apart inside the aggregation).
    keyed = [(p, f"p{p}".encode(), value) for p, value in records]
    asyncio.run(produce(settings, config["input_topic"], keyed))
    config_file, result_file = folder / "quix-config.json", folder / "quix-result.json"
    _write_config(config_file, config)
    with (folder / "quix.log").open("ab") as log:
        done = subprocess.run(
            [str(python), str(PEERS / "quix_aggregation.py"), str(config_file), str(result_file)],
            stdout=log, stderr=subprocess.STDOUT, timeout=900, check=False,
        )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"the Quix Streams peer failed ({done.returncode}); see {folder / 'quix.log'}")
    result = json.loads(result_file.read_text())
    finals = peer_finals(_output(settings, config["output_topic"]))
    return _rates(
        "Quix Streams peer", result["readings"], result["wall_seconds"], result["cpu_seconds"]
    ), finals


def run_naive(
    settings: Settings, singles: Sequence[tuple[int, bytes, bytes]], run: str, folder: Path
) -> tuple[dict[str, Any], dict[Key, float]]:
    """The naive faust baseline on the same readings, one per message."""
    result_file = folder / "naive-result.json"
    config = _peer_config(
        settings, run, "naive", folder, input_topic=f"zc.bench.naive-in-{run}",
        app_id=f"zc-bench-naive-{run}", readings=len(singles), result=str(result_file),
    )  # fmt: skip
    for topic in (config["input_topic"], config["output_topic"]):
        asyncio.run(create_topic(settings, topic))
    asyncio.run(produce(settings, config["input_topic"], singles))
    config_file = folder / "naive-config.json"
    _write_config(config_file, config)
    with (folder / "naive.log").open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, str(PEERS / "naive_faust.py"), "worker", "-l", "warning"],
            stdout=log, stderr=subprocess.STDOUT,
            env={**os.environ, "ZC_BENCH_PEER_CONFIG": str(config_file)},
        )  # fmt: skip
    try:
        _wait(lambda: result_file.exists() or proc.poll() is not None, 900, "the naive faust baseline", 0.2)
        if not result_file.exists():
            raise RuntimeError(
                f"the naive faust baseline exited ({proc.returncode}); see {folder / 'naive.log'}"
            )
        time.sleep(1.0)  # its last sends
    finally:
        stop(proc)
    result = json.loads(result_file.read_text())
    finals = peer_finals(_output(settings, config["output_topic"]))
    return _rates("naive faust", result["readings"], result["wall_seconds"], result["cpu_seconds"]), finals


def single_readings(records: Sequence[Record]) -> list[tuple[int, bytes, bytes]]:
    """Every reading of ``records`` as its own message: (partition, commune key, JSON)."""
    out = []
    for partition, value in records:
        for event in json.loads(value):
            out.append(
                (partition, event["commune"].encode(), json.dumps(event, separators=(",", ":")).encode())
            )
    return out


def run_peer_comparison(
    settings: Settings, records: Sequence[Record], readings: int, reference_dir: Path, run: str, folder: Path
) -> dict[str, Any]:
    """Ours, Quix Streams and naive faust on ``records`` (``readings`` readings in all)."""
    ours, our_windows = run_ours(settings, records, readings, reference_dir, folder)
    quix, quix_windows = run_quix(settings, records, readings, run, folder)
    naive, naive_windows = run_naive(settings, single_readings(records), run, folder)
    return {
        "input": {
            "readings": readings,
            "records": len(records),
            "topic_partitions": settings.kafka_partitions,
        },
        "implementations": [ours, quix, naive],
        "ours_over_quix": _ratios(ours, quix),
        "ours_over_naive_faust": _ratios(ours, naive),
        "same_results": {
            "quix": compare(our_windows, quix_windows),
            "naive_faust": compare(our_windows, naive_windows),
        },
    }


def _ratios(ours: dict[str, Any], peer: dict[str, Any]) -> dict[str, float | None]:
    def ratio(field: str) -> float | None:
        return round(ours[field] / peer[field], 2) if ours[field] and peer[field] else None

    return {
        "readings_per_second": ratio("readings_per_second"),
        "readings_per_cpu_second": ratio("readings_per_cpu_second"),
    }
