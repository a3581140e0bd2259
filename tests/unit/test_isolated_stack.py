"""The suite keeps to its own stack instance and ignores the developer's configuration."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path
from unittest import mock

from config.settings import Settings
from stack.isolated_stack import HELD_BY, isolated_environment, isolated_settings
from stack.kafka_broker import new_cluster_id

DEFAULTS = Settings.model_fields


def test_the_developer_s_settings_are_dropped_but_the_install_cache() -> None:
    developer = {
        "PATH": "/usr/bin",
        "ZC_KAFKA_PORT": "29092",
        "ZC_INFLUX_TOKEN": "theirs",
        "ZC_WORKER_ID": "their-worker",
        "ZC_CACHE_DIR": "/big/disk/cache",
    }
    env = isolated_environment(developer)
    assert env["PATH"] == "/usr/bin" and env["ZC_CACHE_DIR"] == "/big/disk/cache"
    assert "ZC_INFLUX_TOKEN" not in env and "ZC_WORKER_ID" not in env
    assert env["ZC_KAFKA_PORT"] == "19092"
    assert env["ZC_CONFIG"] == os.devnull  # ./zerocarbon.toml is never read


def test_the_instance_shares_no_port_or_folder_with_the_default_stack() -> None:
    default = Settings.model_construct()
    for name, value in isolated_settings({}).items():
        field = name.removeprefix("ZC_").lower()
        if field in DEFAULTS:
            assert str(getattr(default, field, None)) != value, name
    assert Path(isolated_settings({})["ZC_STACK_HOME"]).name == "isolated-stack"


def test_every_port_of_the_settings_is_moved() -> None:
    """A new port setting left at its default would be shared with a person's stack."""
    ports = {f"ZC_{name.upper()}" for name in DEFAULTS if name.endswith("_port")}
    assert ports and ports <= set(isolated_settings({}))


def test_this_run_is_on_the_isolated_instance(settings: Settings) -> None:
    """tests/conftest.py entered it before any test module read its settings."""
    assert settings.kafka_port == 19092 and settings.stack_home.name == "isolated-stack"
    assert {name for name in os.environ if name.startswith("ZC_")} <= {
        *isolated_settings({}),
        "ZC_CACHE_DIR",
    }


def _holder(tmp_path: Path, script: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", f"from stack import isolated_stack\n{script}"],
        env={**env, "XDG_STATE_HOME": str(tmp_path)},
        stdin=subprocess.PIPE,  # input() waits on it until the test kills the holder
        stdout=subprocess.PIPE,
        text=True,
    )


def test_a_second_run_waits_for_the_one_holding_the_instance(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != HELD_BY}
    first = _holder(tmp_path, "isolated_stack.hold_instance(); print('held', flush=True); input()", env)
    assert first.stdout is not None and first.stdout.readline().strip() == "held"
    second = _holder(tmp_path, "isolated_stack.hold_instance(); print('second held', flush=True)", env)
    assert second.stdout is not None
    assert "waiting for it to end" in second.stdout.readline()
    assert second.poll() is None  # still waiting while the first holds it
    first.kill()
    first.wait()
    assert second.stdout.readline().strip() == "second held"
    assert second.wait(timeout=30) == 0


def test_a_process_of_the_holding_run_does_not_wait(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != HELD_BY}
    first = _holder(tmp_path, "isolated_stack.hold_instance(); print('held', flush=True); input()", env)
    assert first.stdout is not None and first.stdout.readline().strip() == "held"
    child = _holder(tmp_path, "isolated_stack.hold_instance(); print('ok')", {**env, HELD_BY: str(first.pid)})
    try:
        out, _ = child.communicate(timeout=30)
        assert out.strip() == "ok"
    finally:
        first.kill()
        first.wait()


def test_a_kraft_cluster_id_never_starts_with_a_dash_the_storage_tool_reads_as_an_option() -> None:
    dash_first = uuid.UUID(bytes=bytes([0xF8]) + bytes(15))  # base64 "-A..."
    with mock.patch("stack.kafka_broker.uuid.uuid4", side_effect=[dash_first, uuid.UUID(int=1)]):
        assert new_cluster_id() == "AAAAAAAAAAAAAAAAAAAAAQ"
    assert all(not new_cluster_id().startswith("-") for _ in range(2000))
