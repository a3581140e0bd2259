"""Install steps run in an environment they control and rebuild when what decides them changes."""

from __future__ import annotations

import json
import re
import socket
import sys
from pathlib import Path

import pytest

from config.settings import Settings
from stack.errors import StackError
from stack.influxdb_server import InfluxDBServer
from stack.install_step import InstallStep, main, step_environment
from stack.kafka_broker import KafkaBroker
from stack.mosquitto_broker import MosquittoBroker
from zerocarbon.component_configs import stack_config

REPO = Path(__file__).resolve().parents[2]

CALLER = {
    "PATH": "/usr/bin:/bin",
    "HOME": "/home/dev",
    "LC_ALL": "C.UTF-8",
    "SSL_CERT_FILE": "/etc/ssl/certs/ca-certificates.crt",
    "GOPROXY": "https://proxy.golang.org,direct",
    "CARGO_HOME": "/home/dev/.cargo",
    # What broke or could break a build when inherited:
    "CARGO_TARGET_DIR": "/home/dev/.cache/zerocarbon/cargo-target",
    "CARGO_BUILD_TARGET": "wasm32-unknown-unknown",
    "RUSTFLAGS": "-D warnings",
    "RUSTC_WRAPPER": "sccache",
    "GOFLAGS": "-mod=vendor",
    "GOCACHE": "/home/dev/.cache/go-build",
    "PIP_FIND_LINKS": "/opt/wheels",
    "PIP_TARGET": "/tmp/elsewhere",
    "PYTHONPATH": "/home/dev/src",
    "VIRTUAL_ENV": "/home/dev/other-venv",
    "MAVEN_OPTS": "-Dmaven.repo.local=/nowhere",
    "MAKEFLAGS": "-j8 --jobserver-auth=3,4",
    "ZC_KAFKA_PORT": "29092",
}


def test_a_step_does_not_inherit_what_changes_a_build() -> None:
    env = step_environment(CALLER)
    for name in (
        "CARGO_TARGET_DIR", "CARGO_BUILD_TARGET", "RUSTFLAGS", "RUSTC_WRAPPER", "GOCACHE",
        "PIP_FIND_LINKS", "PIP_TARGET", "PYTHONPATH", "VIRTUAL_ENV", "MAVEN_OPTS", "MAKEFLAGS",
        "ZC_KAFKA_PORT",
    ):  # fmt: skip
        assert name not in env, name
    assert env["GOFLAGS"] == "-buildvcs=false"  # set on purpose, not the caller's -mod=vendor
    assert env["GOTOOLCHAIN"] == "local"


def test_a_step_keeps_the_session_trust_and_download_sources() -> None:
    env = step_environment(CALLER)
    for name in ("PATH", "HOME", "LC_ALL", "SSL_CERT_FILE", "GOPROXY", "CARGO_HOME"):
        assert env[name] == CALLER[name]


def test_a_step_s_own_settings_win() -> None:
    env = step_environment(CALLER, {"CARGO_TARGET_DIR": "/keyed/build", "GOFLAGS": "-trimpath"})
    assert env["CARGO_TARGET_DIR"] == "/keyed/build" and env["GOFLAGS"] == "-trimpath"


def test_the_influxd_build_never_sees_an_exported_cargo_target_dir(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The bug of issue 16: the Makefile's CARGO_TARGET_DIR reached libflux's cargo build."""
    monkeypatch.setenv("CARGO_TARGET_DIR", str(tmp_path / "cargo-target"))
    monkeypatch.setenv("RUSTFLAGS", "-D warnings")
    server = InfluxDBServer(stack_config(Settings(cache_dir=tmp_path, stack_home=tmp_path)))
    env = server.build.environment()
    assert "CARGO_TARGET_DIR" not in env and "RUSTFLAGS" not in env
    assert env["RUSTUP_TOOLCHAIN"] == "stable"


def test_the_makefile_exports_nothing_to_the_steps_it_starts() -> None:
    makefile = (REPO / "Makefile").read_text()
    assert not re.findall(r"^\s*export\b.*$", makefile, flags=re.M)
    assert ".EXPORT_ALL_VARIABLES" not in makefile


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_the_key_follows_the_inputs_contents_and_values(tmp_path: Path) -> None:
    script = _write(tmp_path / "build.sh", "echo one\n")
    step = InstallStep(name="thing", inputs=(script,), values=("v1",))
    key = step.key(CALLER)
    assert step.key(CALLER) == key
    _write(script, "echo two\n")
    changed_input = step.key(CALLER)
    assert changed_input != key
    assert InstallStep(name="thing", inputs=(script,), values=("v2",)).key(CALLER) != changed_input


def test_the_key_follows_the_toolchain_version(tmp_path: Path) -> None:
    tool = tmp_path / "bin" / "fakec"
    tool.parent.mkdir()
    _write(tool, "#!/bin/sh\necho fakec 1.0\n").chmod(0o755)
    env = {**CALLER, "PATH": f"{tool.parent}:/usr/bin:/bin"}
    step = InstallStep(name="thing", toolchains=(("fakec", "--version"),))
    before = step.key(env)
    _write(tool, "#!/bin/sh\necho fakec 1.1\n")
    assert step.key(env) != before


def test_the_key_does_not_depend_on_where_the_clone_is(tmp_path: Path) -> None:
    """Two clones share one influxd build: only the script's name and contents count."""
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir(), second.mkdir()
    keys = {
        InstallStep(name="x", inputs=(_write(folder / "build.sh", "same\n"),)).key(CALLER)
        for folder in (first, second)
    }
    assert len(keys) == 1


def test_the_installed_servers_live_in_folders_keyed_by_their_inputs(tmp_path: Path) -> None:
    config = stack_config(Settings(cache_dir=tmp_path, stack_home=tmp_path))
    influx = InfluxDBServer(config).install_dir.name
    kafka = KafkaBroker(config).install_dir.name
    assert re.fullmatch(rf"influxdb-{re.escape(config.influx_version)}-[0-9a-f]{{12}}", influx)
    assert re.fullmatch(rf"kafka-{re.escape(config.kafka_version)}-[0-9a-f]{{12}}", kafka)
    other = stack_config(Settings(cache_dir=tmp_path, stack_home=tmp_path, influx_version="v2.7.11"))
    assert InfluxDBServer(other).install_dir.name.split("-")[-1] != influx.split("-")[-1]


def test_the_command_line_runs_a_step_in_its_keyed_build_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("ZC_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("CARGO_TARGET_DIR", "/inherited")
    monkeypatch.setenv("RUSTFLAGS", "-D warnings")
    lock = _write(tmp_path / "Cargo.lock", "# pinned\n")
    seen = tmp_path / "seen.json"
    dump = f"import json, os; open({str(seen)!r}, 'w').write(json.dumps(dict(os.environ)))"
    options = ["native", "--input", str(lock), "--build-dir-var", "CARGO_TARGET_DIR"]
    assert main([*options, "--", sys.executable, "-c", dump]) == 0
    env = json.loads(seen.read_text())
    key = InstallStep(name="native", inputs=(lock,)).key()
    assert env["CARGO_TARGET_DIR"] == str(tmp_path / "cache" / "build" / f"native-{key}")
    assert "RUSTFLAGS" not in env
    _write(lock, "# another pin\n")
    assert main([*options, "--", sys.executable, "-c", dump]) == 0
    assert json.loads(seen.read_text())["CARGO_TARGET_DIR"] != env["CARGO_TARGET_DIR"]


def test_the_command_line_passes_the_command_s_failure_on(tmp_path: Path) -> None:
    assert main(["failing", "--", sys.executable, "-c", "raise SystemExit(3)"]) == 3


def test_what_a_toolchain_says_on_stderr_does_not_move_the_key(tmp_path: Path) -> None:
    """rustup reports on stderr a toolchain it installs on first use: no second build for it."""
    tool = tmp_path / "bin" / "fakec"
    tool.parent.mkdir()
    env = {**CALLER, "PATH": f"{tool.parent}:/usr/bin:/bin"}
    step = InstallStep(name="thing", toolchains=(("fakec", "--version"),))
    _write(tool, "#!/bin/sh\necho 'info: syncing channel updates' >&2\necho fakec 1.0\n").chmod(0o755)
    first = step.key(env)
    _write(tool, "#!/bin/sh\necho fakec 1.0\n")
    assert step.key(env) == first


def test_libflux_is_built_where_the_pkg_config_wrapper_reads_it() -> None:
    """A cargo config file's `[build] target-dir` must not move libflux.a either."""
    script = (REPO / "stack" / "install" / "build_influxd.sh").read_text()
    assert re.search(r"^export CARGO_TARGET_DIR=target$", script, flags=re.M)


def test_a_port_taken_by_a_process_not_ours_is_refused(tmp_path: Path) -> None:
    """Another user's broker on our port would answer our probes as if it were ours."""
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        config = stack_config(Settings(cache_dir=tmp_path, stack_home=tmp_path, mqtt_port=port))
        broker = MosquittoBroker(config)
        with pytest.raises(StackError, match=f"port {port} .* already taken"):
            broker.start()
    assert not broker.process.is_running()
