"""`zerocarbon up`'s pure parts: what it runs, supervisord's configuration, and the restart
counter's side of supervisord's event-listener protocol (zerocarbon/supervised_platform.py,
zerocarbon/restart_counter.py). The real supervisord runs in tests/integration/test_platform_up.py."""

from __future__ import annotations

import io
from pathlib import Path

from config.settings import Settings
from zerocarbon.restart_counter import is_restart, listen, read_counts
from zerocarbon.service_secrets import HOLDINGS
from zerocarbon.supervised_platform import PlatformFiles, programs, supervisord_conf


def test_up_runs_the_workers_and_bridges_asked_for_each_on_its_own_ports_and_ids() -> None:
    settings = Settings(worker_web_port=6066, bridge_metrics_port=9471, bridge_client_id="zc-b")
    found = {p.name: p for p in programs(settings, workers=2, bridges=2)}
    assert list(found) == ["worker-1", "worker-2", "bridge-1", "bridge-2", "sink", "view", "share", "analyse"]
    assert [found[f"worker-{i}"].env["ZC_WORKER_WEB_PORT"] for i in (1, 2)] == ["6066", "6067"]
    assert [found[f"bridge-{i}"].args for i in (1, 2)] == [
        ("bridge", "--client-id", "zc-b-1"),
        ("bridge", "--client-id", "zc-b-2"),
    ]
    assert [found[f"bridge-{i}"].env["ZC_BRIDGE_METRICS_PORT"] for i in (1, 2)] == ["9471", "9472"]
    assert {found[f"bridge-{i}"].env["ZC_BRIDGE_SHARED_GROUP"] for i in (1, 2)} == {"zerocarbon-bridges"}
    one = [p.name for p in programs(settings, workers=1, bridges=1)]
    assert one == ["worker", "bridge", "sink", "view", "share", "analyse"]
    collecting = programs(settings, workers=1, bridges=1, collect=["yelo-bike-stations"])
    assert [(p.name, p.args) for p in collecting][-1] == ("collect", ("collect", "yelo-bike-stations"))
    assert programs(settings, 1, 1, collect=[])[-1].args == ("collect",)  # every shipped collector


def test_supervisord_restarts_each_program_with_backoff_and_stops_it_with_time_to_checkpoint(
    tmp_path: Path,
) -> None:
    files = PlatformFiles(tmp_path)
    conf = supervisord_conf(files, programs(Settings(worker_web_port=6066), 1, 1), "/venv/bin/python")
    worker = conf[conf.index("[program:worker]") : conf.index("[program:bridge]")]
    assert "command=/venv/bin/python -m zerocarbon.cli worker\n" in worker
    assert 'environment=ZC_WORKER_WEB_PORT="6066"' in worker
    for line in ("autorestart=true", "startsecs=10", "startretries=8", "stopsignal=TERM", "stopwaitsecs=60"):
        assert line in worker
    assert f"file={tmp_path / 'supervisord.sock'}\nchmod=0700" in conf
    assert f"zerocarbon.restart_counter {tmp_path / 'restarts.json'}" in conf
    assert "events=PROCESS_STATE_STARTING" in conf


def test_a_start_from_exited_or_backoff_is_a_restart_and_a_start_asked_for_is_not() -> None:
    assert (
        is_restart("PROCESS_STATE_STARTING", "processname:worker groupname:worker from_state:EXITED tries:0")
        == "worker"
    )
    assert (
        is_restart("PROCESS_STATE_STARTING", "processname:sink groupname:sink from_state:BACKOFF tries:1")
        == "sink"
    )
    assert (
        is_restart("PROCESS_STATE_STARTING", "processname:sink groupname:sink from_state:STOPPED tries:0")
        is None
    )
    assert is_restart("PROCESS_STATE_RUNNING", "processname:sink groupname:sink from_state:STARTING") is None


def test_the_listener_counts_restarts_and_answers_each_event(tmp_path: Path) -> None:
    def event(name: str, payload: str) -> str:
        header = "ver:3.0 server:supervisor serial:1 pool:restart-counter poolserial:1"
        return f"{header} eventname:{name} len:{len(payload)}\n{payload}"

    events = [
        event("PROCESS_STATE_STARTING", "processname:worker groupname:worker from_state:STOPPED tries:0"),
        event("PROCESS_STATE_STARTING", "processname:worker groupname:worker from_state:EXITED tries:0"),
        event("PROCESS_STATE_STARTING", "processname:worker groupname:worker from_state:BACKOFF tries:1"),
    ]
    out = io.StringIO()
    counts = tmp_path / "restarts.json"
    listen(counts, io.StringIO("".join(events)), out)
    assert read_counts(counts) == {"worker": 2}
    assert out.getvalue() == "READY\nRESULT 2\nOK" * 3 + "READY\n"


def test_up_refuses_what_any_command_it_runs_would() -> None:
    for command in ("stack up", "bridge", "worker", "sink", "view", "analyse"):
        assert set(HOLDINGS[command].addresses) <= set(HOLDINGS["up"].addresses)
        assert set(HOLDINGS[command].secrets) <= set(HOLDINGS["up"].secrets)
