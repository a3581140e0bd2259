"""Background processes tracked by pid files, so `up`, `status` and `down` work across shells.

A pid alone does not name a process for long: after a reboot, or once the service has died
and pids wrapped, the pid in the file can belong to anything, and `stack down` would signal
its process group. So the pid file also records the process's identity, as Linux gives it:
the boot (``/proc/sys/kernel/random/boot_id``) and the process's start time since boot
(field 22 of ``/proc/<pid>/stat``), which an ``exec`` keeps. A live pid whose identity does
not match is not ours: not running, never signalled, and its pid file is removed.

The file's first line is still the pid, so ``kill $(head -1 kafka.pid)`` works by hand.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


@dataclass(frozen=True)
class PidFileProcess:
    """One long-running process: its pid file and its log file."""

    pid_file: Path
    log_file: Path

    def pid(self) -> int | None:
        """The pid recorded in the pid file if that process is alive and is the one we started,
        else None; a pid file naming a live process that is not ours is removed."""
        try:
            text = self.pid_file.read_text()
            pid, identity = _parse(text)
        except (FileNotFoundError, ValueError):
            return None
        if not _proc_available():
            return pid if _alive(pid) else None  # no way to tell which process it is
        stat = _stat_fields(pid)
        if stat is None or stat[0] == "Z":
            return None  # gone, or a zombie waiting for its parent
        problem = _not_ours(pid, stat, identity, self.pid_file.parent)
        if problem is None:
            return pid
        log.warning(
            "%s names pid %d, which is not the process it recorded (%s): not signalling it, "
            "removing the stale pid file",
            self.pid_file, pid, problem,
        )  # fmt: skip
        _remove_if_unchanged(self.pid_file, text)
        return None

    def is_running(self) -> bool:
        return self.pid() is not None

    def spawn(
        self, argv: Sequence[str], env: Mapping[str, str] | None = None, cwd: Path | None = None
    ) -> int:
        """Start argv detached from our session, output appended to the log file."""
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        self.pid_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as output:
            output.write(f"\n=== {time.strftime('%Y-%m-%dT%H:%M:%S')} starting: {' '.join(argv)}\n".encode())
            output.flush()
            proc = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                env=dict(env) if env is not None else None,
                cwd=cwd,
                start_new_session=True,
            )
        # Popen returns once the child has exec'd: its start time is already the one it keeps.
        self.pid_file.write_text(_format(proc.pid))
        return proc.pid

    def stop(self, timeout: float = 30.0) -> bool:
        """SIGTERM, then SIGKILL after ``timeout`` seconds; True if a process was stopped."""
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        _signal_group(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.pid() is None:
                break
            time.sleep(0.2)
        else:
            if self.pid() == pid:  # still ours: SIGTERM did not stop it
                _signal_group(pid, signal.SIGKILL)
                time.sleep(0.5)
        self.pid_file.unlink(missing_ok=True)
        return True

    def log_tail(self, lines: int = 20) -> str:
        """The end of the log, to quote in an error message."""
        try:
            text = self.log_file.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log yet)"
        return "\n".join(text.splitlines()[-lines:])


def _signal_group(pid: int, sig: signal.Signals) -> None:
    # The service was started in its own session, so its pid is also its process group:
    # signalling the group also reaches the children a launcher may have forked.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)


def _proc_available() -> bool:
    return Path("/proc/self/stat").exists()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, but another user's
    return True


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of ``/proc/<pid>/stat`` from field 3 (the state letter) on; None if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # After the parenthesised command name, which may itself hold spaces and parentheses.
    return stat.rsplit(")", 1)[-1].split()


def _start_ticks(stat: list[str]) -> str:
    return stat[22 - 3]  # field 22: start time, in clock ticks since boot


def _boot_id() -> str | None:
    try:
        return BOOT_ID.read_text().strip()
    except OSError:
        return None


def _format(pid: int) -> str:
    """The pid file's text: the pid, then what identifies that process."""
    lines = [str(pid)]
    boot = _boot_id()
    if boot is not None:
        lines.append(f"boot_id={boot}")
    stat = _stat_fields(pid)
    if stat is not None:
        lines.append(f"start_ticks={_start_ticks(stat)}")
    return "\n".join(lines) + "\n"


def _parse(text: str) -> tuple[int, dict[str, str]]:
    """The pid and the identity recorded with it (empty in a pid file of an older version)."""
    first, *rest = text.strip().splitlines() or [""]
    identity = dict(line.split("=", 1) for line in rest if "=" in line)
    return int(first.strip()), identity


def _not_ours(pid: int, stat: list[str], identity: dict[str, str], home: Path) -> str | None:
    """Why the live process ``pid`` is not the one the pid file recorded; None if it is."""
    if "start_ticks" in identity:
        boot = _boot_id()
        if "boot_id" in identity and boot is not None and identity["boot_id"] != boot:
            return "recorded before the last reboot"
        if identity["start_ticks"] != _start_ticks(stat):
            return f"started at tick {_start_ticks(stat)}, not {identity['start_ticks']}"
        return None
    # A pid file of an older version, with the pid alone: ours only if the process runs in
    # the folder of its pid file, where services are started (stack/service.py), or names it.
    with contextlib.suppress(OSError):
        if Path(os.readlink(f"/proc/{pid}/cwd")).resolve() == home.resolve():
            return None
    with contextlib.suppress(OSError):
        if str(home.resolve()).encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
            return None
    return f"a pid alone, and the process neither runs in nor names {home}"


def _remove_if_unchanged(pid_file: Path, text: str) -> None:
    # A `stack up` in another shell may have written a new pid file since it was read.
    with contextlib.suppress(OSError):
        if pid_file.read_text() == text:
            pid_file.unlink()
