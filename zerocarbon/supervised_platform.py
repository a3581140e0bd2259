"""`zerocarbon up | down | ps`: the local stack and the service's processes, kept running.

The processes (bridges, workers, the sink, the operators' page, the sharing stage, the causal
analysis) run under supervisord
(docs/operations.md says why: a well-kept supervisor, no process manager of ours): one that
exits is started again, with supervisord's backoff when it dies during its first
``START_SECONDS``; each restart is counted by zerocarbon/restart_counter.py, its event
listener. ``down`` asks supervisord to stop them (SIGTERM: the worker checkpoints, the sink
writes what it holds, each within ``STOP_SECONDS``), then stops the stack. Everything lives
under ``<stack home>/platform``: the generated configuration, supervisord's socket (mode
0700), logs and the restart counts.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
import urllib.error
import urllib.request
import xmlrpc.client
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from supervisor.xmlrpc import SupervisorTransport

from config.settings import Settings
from stack import control
from stack.errors import StackError
from zerocarbon.component_configs import metrics_targets_dir, stack_config
from zerocarbon.kafka_catalogue import declare_catalogue
from zerocarbon.restart_counter import read_counts, write_counts

START_SECONDS = 10  # a process that dies sooner is in a start-up loop: retried with backoff
START_RETRIES = 8  # then given up (FATAL), said by `ps` and logged
STOP_SECONDS = 60  # a worker's last checkpoint, a sink's drain
RESTART_COUNTER = "restart-counter"  # the event listener's name in supervisord
SHARED_GROUP = "zerocarbon-bridges"  # several bridges share one subscription unless told otherwise


@dataclass(frozen=True)
class Program:
    """One supervised process: its name, its ``zerocarbon`` arguments and settings of its own."""

    name: str
    args: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)


def programs(
    settings: Settings, workers: int, bridges: int, collect: list[str] | None = None
) -> list[Program]:
    """What `up` runs: ``workers`` workers (each its page on the next port), ``bridges`` bridges
    (each its own MQTT client id and metrics port), one sink, the operators' page, the sharing
    stage and the causal analysis (hourly); with
    ``collect``, the pull collectors it names (all the shipped ones when empty)."""
    found: list[Program] = []
    for i in range(workers):
        port = settings.worker_web_port + i
        found.append(
            Program(
                "worker" if workers == 1 else f"worker-{i + 1}",
                ("worker",),
                {"ZC_WORKER_WEB_PORT": str(port)},
            )
        )
    for i in range(bridges):
        client_id = settings.bridge_client_id if bridges == 1 else f"{settings.bridge_client_id}-{i + 1}"
        metrics = settings.bridge_metrics_port + i if settings.bridge_metrics_port else 0
        env = {"ZC_BRIDGE_METRICS_PORT": str(metrics)}
        if bridges > 1:  # one MQTT 5 shared subscription: each reading to one bridge, not to all
            env["ZC_BRIDGE_SHARED_GROUP"] = settings.bridge_shared_group or SHARED_GROUP
        found.append(
            Program(
                "bridge" if bridges == 1 else f"bridge-{i + 1}", ("bridge", "--client-id", client_id), env
            )
        )
    found.append(Program("sink", ("sink",)))
    found.append(Program("view", ("view",)))
    found.append(Program("share", ("share",)))  # idle until an agreement is granted
    found.append(Program("analyse", ("analyse", "--every", "3600")))  # the causal evidence, hourly
    if collect is not None:
        found.append(Program("collect", ("collect", *collect)))
    return found


def _local(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "") else host  # bound to all: ask on loopback


@dataclass(frozen=True)
class PlatformFiles:
    home: Path

    @property
    def conf(self) -> Path:
        return self.home / "supervisord.conf"

    @property
    def socket(self) -> Path:
        return self.home / "supervisord.sock"

    @property
    def pid_file(self) -> Path:
        return self.home / "supervisord.pid"

    @property
    def restarts(self) -> Path:
        return self.home / "restarts.json"

    @property
    def logs(self) -> Path:
        return self.home / "logs"


def platform_files(settings: Settings) -> PlatformFiles:
    return PlatformFiles(settings.stack_home / "platform")


def supervisord_conf(files: PlatformFiles, running: list[Program], python: str) -> str:
    """supervisord's configuration for ``running``, every path absolute."""
    sections = [
        f"[unix_http_server]\nfile={files.socket}\nchmod=0700\n",
        f"[supervisord]\nlogfile={files.logs / 'supervisord.log'}\npidfile={files.pid_file}\n"
        f"childlogdir={files.logs}\nnodaemon=false\n",
        "[rpcinterface:supervisor]\n"
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n",
        f"[supervisorctl]\nserverurl=unix://{files.socket}\n",
    ]
    for program in running:
        command = shlex.join([python, "-m", "zerocarbon.cli", *program.args])
        env = ",".join(f'{k}="{v}"' for k, v in sorted(program.env.items()))
        sections.append(
            f"[program:{program.name}]\ncommand={command}\n"
            + (f"environment={env}\n" if env else "")
            + f"autorestart=true\nstartsecs={START_SECONDS}\nstartretries={START_RETRIES}\n"
            f"stopsignal=TERM\nstopwaitsecs={STOP_SECONDS}\nstopasgroup=true\nkillasgroup=true\n"
            f"redirect_stderr=true\nstdout_logfile={files.logs / program.name}.log\n"
            "stdout_logfile_maxbytes=50MB\nstdout_logfile_backups=3\n"
        )
    counter = shlex.join([python, "-m", "zerocarbon.restart_counter", str(files.restarts)])
    sections.append(
        f"[eventlistener:{RESTART_COUNTER}]\ncommand={counter}\n"
        f"events=PROCESS_STATE_STARTING\nstderr_logfile={files.logs / 'restart-counter.log'}\n"
    )
    return "\n".join(sections)


def _rpc(files: PlatformFiles) -> Any:
    transport = SupervisorTransport(None, None, f"unix://{files.socket}")
    return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport).supervisor


def _supervisord_pid(files: PlatformFiles) -> int | None:
    try:
        pid = int(files.pid_file.read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


def _supervisorctl(files: PlatformFiles, *args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "supervisor.supervisorctl", "-c", str(files.conf), *args],
        check=False,
        stdout=subprocess.DEVNULL,
    )


def up(
    settings: Settings, workers: int, bridges: int, collect: list[str] | None = None, timeout: float = 120
) -> list[dict[str, Any]]:
    """Start the stack, then the processes under supervisord (or bring a running one to the
    configuration asked for); wait until each runs. Idempotent."""
    report = control.up(stack_config(settings))
    if unhealthy := [s["name"] for s in report if not s["healthy"]]:
        raise StackError(
            f"the local stack is not healthy: {', '.join(unhealthy)} (`zerocarbon stack status`)"
        )
    # The catalogue's topics, as `zerocarbon stack up` declares them: on a new machine no
    # process could start without them (each requires its topics).
    declare_catalogue(settings)
    files = platform_files(settings)
    files.logs.mkdir(parents=True, exist_ok=True)
    files.home.chmod(0o700)
    running = programs(settings, workers, bridges, collect)
    files.conf.write_text(supervisord_conf(files, running, sys.executable))
    if _supervisord_pid(files) is None:
        write_counts(files.restarts, {})
        with (files.logs / "supervisord.out").open("ab") as out:  # never this command's own output
            subprocess.run(
                [sys.executable, "-m", "supervisor.supervisord", "-c", str(files.conf)],
                check=True,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
    else:
        _supervisorctl(files, "update")  # added, changed and removed programs
        _supervisorctl(files, "start", "all")
    deadline = time.monotonic() + timeout
    while True:
        table = ps(settings)  # empty until supervisord has written its pid file
        waiting = [row["name"] for row in table if row["state"] != "RUNNING"] if table else ["supervisord"]
        if not waiting:
            return table
        if time.monotonic() > deadline or any(row["state"] == "FATAL" for row in table):
            raise StackError(f"not running after {timeout:.0f} s: {waiting}; see {files.logs}")
        time.sleep(1)


def ps(settings: Settings) -> list[dict[str, Any]]:
    """Each supervised process: its state, pid, uptime, restarts, and what its own pages say:
    ``health`` (``/health``: alive) and ``ready`` (``/ready``: connected and caught up), found
    at the address it registered for Prometheus (config/metrics_targets.py)."""
    files = platform_files(settings)
    if _supervisord_pid(files) is None:
        return []
    restarts = read_counts(files.restarts)
    targets = metrics_targets_dir(settings)
    view = f"http://{_local(settings.view_host)}:{settings.view_port}"
    for _ in range(50):  # the socket appears a moment after supervisord's pid file
        try:
            infos = _rpc(files).getAllProcessInfo()
            break
        except OSError:
            time.sleep(0.2)
    else:
        raise StackError(f"supervisord does not answer on {files.socket}")
    rows = []
    for info in infos:
        if info["name"] == RESTART_COUNTER:
            continue  # supervision's own, not the platform's
        running = info["statename"] == "RUNNING"
        pages = (view if info["name"] == "view" else _registered(targets, info["pid"])) if running else None
        rows.append(
            {
                "name": info["name"],
                "state": info["statename"],
                "pid": info["pid"] or None,
                "uptime_seconds": info["now"] - info["start"] if running else 0,
                "restarts": restarts.get(info["name"], 0),
                "health": _probe(f"{pages}/health") if pages else None,
                # The operators' page has no readiness of its own: it shows what it can reach.
                "ready": _probe(f"{pages}/ready") if pages and info["name"] != "view" else None,
                "log": info["stdout_logfile"],
            }
        )
    return rows


def _registered(targets: Path, pid: int) -> str | None:
    """The base address of the pages of process ``pid``, as it registered it; None before it
    has (starting) or when it serves none."""
    for found in targets.glob(f"*-{pid}.json"):
        try:
            return f"http://{json.loads(found.read_text())[0]['targets'][0]}"
        except (OSError, ValueError, LookupError, TypeError):
            return None
    return None


def _probe(url: str) -> str:
    """``pass``, ``fail: <the checks failing>`` (a 503 naming them), or why it did not answer."""
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            return str(json.loads(answer.read()).get("status", "pass"))
    except urllib.error.HTTPError as refused:
        try:
            failing = json.loads(refused.read()).get("failing") or []
        except (OSError, ValueError, AttributeError):
            failing = []
        return f"fail: {', '.join(map(str, failing)) or refused.code}"
    except (OSError, ValueError) as exc:
        return f"unreachable: {exc}"


def down(settings: Settings, keep_stack: bool = False) -> list[str]:
    """Stop the processes (each SIGTERM, and the time to stop cleanly), then the stack unless
    ``keep_stack``; the names of the stack's services stopped."""
    files = platform_files(settings)
    pid = _supervisord_pid(files)
    if pid is not None:
        _rpc(files).shutdown()
        deadline = time.monotonic() + STOP_SECONDS + 30
        while _supervisord_pid(files) is not None and time.monotonic() < deadline:
            time.sleep(0.5)
        if _supervisord_pid(files) is not None:
            raise StackError(f"supervisord (pid {pid}) still runs {STOP_SECONDS + 30} s after its shutdown")
    return [] if keep_stack else control.down(stack_config(settings))


HELP_UP = "bring up the local stack and the service's processes, and keep them running"


def add_commands(sub: Any) -> None:
    """``up``, ``down`` and ``ps`` on the CLI's subcommands."""
    up_parser = sub.add_parser(
        "up",
        help=HELP_UP,
        description="Start the local stack (as `zerocarbon stack up`), then the bridges, workers, "
        "the sink and the operators' page under supervisord, which restarts any that exits (with "
        "backoff when it dies during start-up) and counts it. Idempotent: run again with other "
        "counts to change them. Files: <ZC_STACK_HOME>/platform. See docs/operations.md.",
    )
    up_parser.add_argument(
        "--workers", type=int, default=1, help="workers (default 1; each its page on the next port)"
    )
    up_parser.add_argument(
        "--bridges", type=int, default=1, help="bridges (default 1; client ids <id>-1, -2...)"
    )
    up_parser.add_argument(
        "--collect",
        nargs="*",
        metavar="COLLECTOR",
        help="also run `zerocarbon collect` with these collectors (none named: every shipped one; "
        "docs/collectors.md)",
    )
    up_parser.set_defaults(handler=_up)
    down_parser = sub.add_parser("down", help="stop the service's processes cleanly, then the local stack")
    down_parser.add_argument(
        "--keep-stack",
        action="store_true",
        help="stop the service's processes only; the brokers and InfluxDB run on",
    )
    down_parser.set_defaults(handler=_down)
    ps_parser = sub.add_parser(
        "ps",
        help="each process `up` runs: state, pid, uptime, restarts, health (JSON; exit 1 if one "
        "is not running)",
    )
    ps_parser.set_defaults(handler=_ps)


def _up(args: argparse.Namespace, settings: Settings) -> int:
    print(json.dumps(up(settings, args.workers, args.bridges, args.collect), indent=2))
    return 0


def _down(args: argparse.Namespace, settings: Settings) -> int:
    print(json.dumps({"stack_stopped": down(settings, args.keep_stack)}))
    return 0


def _ps(_args: argparse.Namespace, settings: Settings) -> int:
    table = ps(settings)
    print(json.dumps(table, indent=2))
    return 0 if table and all(row["state"] == "RUNNING" for row in table) else 1
