"""The stack instance the test suite and the benchmarks run against, beside a person's own.

Tests and benchmarks write checkpoints, move consumer groups, publish MQTT readings a bridge
would forward, fill InfluxDB buckets and spool folders. Sharing the stack a person runs on
the same machine (``make demo``, a worker they are debugging) would overwrite that state.
A name prefix would separate Kafka topics and groups but not MQTT topics, InfluxDB buckets
or the stack's files; a second instance, with its own home and ports, separates all of them.

The suite also never reads the developer's configuration: every ``ZC_*`` variable is
dropped (but ``ZC_CACHE_DIR``: installs are keyed by their inputs and hold no state) and no
``./zerocarbon.toml`` is read. Run any command against this instance with
``python -m stack.isolated_stack COMMAND...`` (``zerocarbon stack down``, a bench script).
A run that uses the instance (the stack fixture of the tests, a benchmark) holds it with a
lock: a second one waits for it.
"""

from __future__ import annotations

import fcntl
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

KEPT_SETTINGS = frozenset({"ZC_CACHE_DIR"})
# Set by the process that holds the instance, for the processes it starts (not a setting).
HELD_BY = "ZEROCARBON_ISOLATED_STACK_HELD_BY"


def isolated_home(inherited: Mapping[str, str]) -> Path:
    """``$XDG_STATE_HOME/zerocarbon/isolated-stack`` (``~/.local/state`` by default)."""
    state = inherited.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "zerocarbon" / "isolated-stack"


def isolated_settings(inherited: Mapping[str, str]) -> dict[str, str]:
    """The instance's own home and ports (the defaults plus 10 000), and no config file."""
    return {
        "ZC_CONFIG": os.devnull,
        "ZC_STACK_HOME": str(isolated_home(inherited)),
        "ZC_KAFKA_PORT": "19092",
        "ZC_KAFKA_CONTROLLER_PORT": "19093",
        "ZC_KAFKA_INTERNAL_PORT": "19094",
        "ZC_MQTT_PORT": "18883",
        "ZC_MQTT_PLAIN_PORT": "11883",
        "ZC_INFLUX_PORT": "18086",
        "ZC_WORKER_WEB_PORT": "16066",
        "ZC_VIEW_PORT": "18088",
        "ZC_PROMETHEUS_PORT": "19479",
        # Tests start several bridges and sinks at once: each takes a free port for /metrics.
        "ZC_BRIDGE_METRICS_PORT": "0",
        "ZC_SINK_METRICS_PORT": "0",
        "ZC_COLLECTOR_METRICS_PORT": "0",
        "ZC_SHARING_METRICS_PORT": "0",
    }


def isolated_environment(inherited: Mapping[str, str]) -> dict[str, str]:
    """``inherited`` without the person's ``ZC_*`` configuration, pointed at this instance."""
    env = {
        name: value
        for name, value in inherited.items()
        if not name.startswith("ZC_") or name in KEPT_SETTINGS
    }
    env.update(isolated_settings(inherited))
    return env


def enter(hold: bool = True) -> None:
    """Point this process, and every process it starts, at the isolated instance; with
    ``hold``, first wait until no other run (another clone's tests, a benchmark) uses it."""
    isolated = isolated_environment(os.environ)
    os.environ.clear()
    os.environ.update(isolated)
    if hold:
        hold_instance()


def hold_instance() -> None:
    """Wait until no other run uses the isolated instance, then keep it until this process
    ends. A process started by the run that holds it (the suite's smoke test runs
    bench/suite.py) is part of that run: waiting for its parent's lock would never end."""
    if HELD_BY in os.environ:
        return
    _hold(isolated_home(os.environ))
    os.environ[HELD_BY] = str(os.getpid())


_held: list[IO[str]] = []


def _hold(home: Path) -> None:
    """An exclusive lock on the instance, kept until this process ends: two runs on one
    instance would stop it under each other, or wipe it while the other starts it."""
    if _held:
        return
    lock = home.with_name(home.name + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    handle = lock.open("w")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print(f"[isolated-stack] another run uses {home}; waiting for it to end", flush=True)
        fcntl.flock(handle, fcntl.LOCK_EX)
    _held.append(handle)


def main(argv: Sequence[str] | None = None) -> int:
    """Run a command against the isolated instance: ``python -m stack.isolated_stack CMD...``."""
    command = list(sys.argv[1:] if argv is None else argv)
    if not command or command[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if command else 2
    enter(hold=False)  # an operator's command (`stack down`) may act while a run holds it
    os.execvp(command[0], command)


if __name__ == "__main__":
    raise SystemExit(main())
