"""Background processes are found again through their pid file and stopped cleanly."""

import sys
from pathlib import Path

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
