"""Processes tests/integration/test_docker_configs.py runs as compose would: docker/'s files
with the container's addresses moved to this machine's, the one-shots' commands, and the
brokers' process groups started and stopped."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from config.kafka_access import KafkaAccess
from stack.kafka_broker import metadata_brokers


def moved(text: str, substitutions: list[tuple[str, str]]) -> str:
    """``text`` with the container's addresses and paths replaced by this machine's."""
    for old, new in substitutions:
        assert old in text, f"{old!r} is no longer in the file: update this test's substitutions"
        text = text.replace(old, new)
    return text


def run_zerocarbon(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`zerocarbon ARGS...` as compose's one-shot runs it, with ``env`` as its settings."""
    return subprocess.run(
        [sys.executable, "-m", "zerocarbon.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=180,
    )


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the process group this test started (start.sh and its JVMs), then SIGKILL."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def start_cluster(
    starts: list[tuple[Path, dict[str, str]]], environment: dict[str, str], own_login: KafkaAccess, base: Path
) -> list[subprocess.Popen[bytes]]:
    """``sh start.sh`` of each node in a process group of its own, once node 1 answers its own
    login with the three brokers registered."""
    procs = []
    for start, node_env in starts:
        with (base / f"kafka-{node_env['ZC_KAFKA_NODE_ID']}.log").open("ab") as out:
            procs.append(
                subprocess.Popen(
                    ["sh", str(start)],
                    env={**environment, **node_env},
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
    deadline = time.monotonic() + 180
    brokers: list[str] = []
    while len(brokers) < len(starts):
        if any(proc.poll() is not None for proc in procs) or time.monotonic() > deadline:
            stop_all(procs)
            logs = "\n".join(path.read_text()[-1500:] for path in sorted(base.glob("kafka-*.log")))
            raise AssertionError(f"the cluster did not serve (brokers {brokers}):\n{logs}")
        time.sleep(1)
        with contextlib.suppress(Exception):  # not serving yet: any failure means wait
            brokers = asyncio.run(metadata_brokers(own_login))
    return procs


def stop_all(procs: list[subprocess.Popen[bytes]]) -> None:
    """The nodes stopped together: one after the other, the last ones would wait for a quorum."""
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    for proc in procs:
        stop(proc)
