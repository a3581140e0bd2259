"""Background processes are found again through their pid file and stopped cleanly."""

import logging
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from stack.process import PidFileProcess


def test_spawn_then_stop(tmp_path: Path) -> None:
    proc = PidFileProcess(tmp_path / "x.pid", tmp_path / "logs" / "x.log")
    proc.spawn([sys.executable, "-c", "import time; print('up', flush=True); time.sleep(60)"])
    assert proc.is_running()
    assert proc.stop(timeout=5)
    assert not proc.is_running()
    assert not (tmp_path / "x.pid").exists()
    assert "starting:" in proc.log_tail()


def test_stale_pid_file_means_not_running(tmp_path: Path) -> None:
    pid_file = tmp_path / "x.pid"
    pid_file.write_text("999999999\n")
    proc = PidFileProcess(pid_file, tmp_path / "x.log")
    assert proc.pid() is None
    assert proc.stop() is False


def test_garbage_pid_file_means_not_running(tmp_path: Path) -> None:
    pid_file = tmp_path / "x.pid"
    pid_file.write_text("not a pid")
    assert PidFileProcess(pid_file, tmp_path / "x.log").pid() is None


def _start_ticks(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[22 - 3]


@contextmanager
def _unrelated_sleep() -> Iterator[subprocess.Popen[bytes]]:
    """A live process this stack did not start: its own session, running elsewhere."""
    sleeper = subprocess.Popen(["sleep", "60"], cwd="/", start_new_session=True)
    try:
        yield sleeper
    finally:
        sleeper.kill()
        sleeper.wait()


def test_the_pid_file_records_which_process_it_names(tmp_path: Path) -> None:
    proc = PidFileProcess(tmp_path / "x.pid", tmp_path / "x.log")
    pid = proc.spawn(["sleep", "60"])
    try:
        lines = (tmp_path / "x.pid").read_text().splitlines()
        assert lines[0] == str(pid)  # `kill $(head -1 x.pid)` still works by hand
        assert f"start_ticks={_start_ticks(pid)}" in lines
        assert f"boot_id={Path('/proc/sys/kernel/random/boot_id').read_text().strip()}" in lines
        assert proc.pid() == pid
    finally:
        assert proc.stop(timeout=5)


def test_a_pid_alone_naming_a_process_not_ours_is_never_signalled(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The pid file of an older version (a pid alone) after a reboot: the pid is anything."""
    with _unrelated_sleep() as sleeper:
        pid_file = tmp_path / "kafka.pid"
        pid_file.write_text(f"{sleeper.pid}\n")
        proc = PidFileProcess(pid_file, tmp_path / "kafka.log")
        with caplog.at_level(logging.WARNING, logger="stack.process"):
            assert not proc.is_running()
        assert not pid_file.exists()
        assert f"names pid {sleeper.pid}" in caplog.text and "removing the stale pid file" in caplog.text
        pid_file.write_text(f"{sleeper.pid}\n")
        assert proc.stop(timeout=1) is False
        time.sleep(0.2)
        assert sleeper.poll() is None, "stop() signalled a process that is not ours"
        assert not pid_file.exists()


def test_a_recorded_identity_that_does_not_match_is_never_signalled(tmp_path: Path) -> None:
    with _unrelated_sleep() as sleeper:
        pid_file = tmp_path / "x.pid"
        ticks = int(_start_ticks(sleeper.pid))
        for identity in (f"start_ticks={ticks - 1}", f"boot_id=an-earlier-boot\nstart_ticks={ticks}"):
            pid_file.write_text(f"{sleeper.pid}\n{identity}\n")
            proc = PidFileProcess(pid_file, tmp_path / "x.log")
            assert proc.stop(timeout=1) is False, identity
            assert sleeper.poll() is None, identity
            assert not pid_file.exists()


def test_a_pid_alone_naming_a_process_run_in_the_pid_files_folder_is_still_ours(tmp_path: Path) -> None:
    """A stack started by an older version is still stopped by `stack down` (services run in
    the folder of their pid file, stack/service.py)."""
    server = subprocess.Popen(["sleep", "60"], cwd=tmp_path, start_new_session=True)
    try:
        pid_file = tmp_path / "x.pid"
        pid_file.write_text(f"{server.pid}\n")
        proc = PidFileProcess(pid_file, tmp_path / "x.log")
        assert proc.pid() == server.pid
        assert proc.stop(timeout=5)
        assert server.wait(timeout=5) == -signal.SIGTERM
    finally:
        server.kill()
        server.wait()
