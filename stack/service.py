"""What every local service offers, and the shared start/wait/stop logic."""

from __future__ import annotations

import socket
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from stack.errors import StackError
from stack.layout import ServiceDirs
from stack.process import PidFileProcess


@dataclass
class Health:
    """One service's state as `zerocarbon stack status` reports it."""

    name: str
    healthy: bool
    running: bool
    version: str | None
    endpoint: str
    log_file: str
    detail: str = ""


class LocalService(ABC):
    """A server run as a local process: installed once, configured by us, probed for health."""

    name: str
    ready_timeout: float = 120.0

    def __init__(self, dirs: ServiceDirs) -> None:
        self.dirs = dirs
        self.process = PidFileProcess(dirs.pid_file, dirs.log_file)

    @property
    @abstractmethod
    def endpoint(self) -> str:
        """Where clients reach it, e.g. ``127.0.0.1:9092``."""

    @property
    @abstractmethod
    def ports(self) -> tuple[int, ...]:
        """The ports it listens on, on the stack's bind host."""

    @abstractmethod
    def install(self) -> None:
        """Make the server's binaries available, reusing the per-user cache."""

    @abstractmethod
    def configure(self) -> None:
        """Write the configuration files and prepare the data directory."""

    @abstractmethod
    def command(self) -> tuple[Sequence[str], Mapping[str, str] | None]:
        """The argv (and environment, None to inherit) that runs the server."""

    @abstractmethod
    def probe(self) -> tuple[bool, str | None, str]:
        """Ask the running server whether it serves: (healthy, version, detail)."""

    def after_ready(self) -> None:  # noqa: B027 - optional hook, nothing to do by default
        """One-time initialisation that needs the server up (users, tokens...)."""

    def configuration_changed(self) -> bool:
        """Whether the running server's configuration differs from what ``configure`` would
        write now (an older stack home, a changed setting): it must restart to take it."""
        return False

    def start(self) -> bool:
        """Start the server unless it already runs with the current configuration; True if it
        was started now."""
        if self.process.is_running() and self.configuration_changed():
            print(f"[stack] {self.name}: configuration changed, restarting", flush=True)
            self.stop()
        if self.process.is_running():
            return False
        self._refuse_taken_ports()
        self.install()
        self.dirs.create()
        self.configure()
        argv, env = self.command()
        self.process.spawn(argv, env=env, cwd=self.dirs.home)
        return True

    def _refuse_taken_ports(self) -> None:
        """Another process on our port (another user's stack, a stale server without our pid
        file) would answer our probes: we would then talk to a server that is not ours."""
        host = self.endpoint.removeprefix("http://").rsplit(":", 1)[0]
        for port in self.ports:
            with socket.socket() as probe:
                probe.settimeout(1.0)
                if probe.connect_ex((host, port)) == 0:
                    raise StackError(
                        f"{self.name}: port {port} on {host} is already taken by a process this "
                        f"stack did not start (its pid file is {self.dirs.pid_file}); stop that "
                        "process or give this stack other ports (ZC_*_PORT, docs/configuration.md)"
                    )

    def wait_ready(self, timeout: float | None = None) -> None:
        """Block until the probe passes; raise with the log's tail if it never does."""
        deadline = time.monotonic() + (timeout or self.ready_timeout)
        detail = ""
        while time.monotonic() < deadline:
            if not self.process.is_running():
                raise StackError(
                    f"{self.name} exited during start-up; see {self.dirs.log_file}:\n"
                    f"{self.process.log_tail()}"
                )
            healthy, _, detail = self.probe()
            if healthy:
                self.after_ready()
                return
            time.sleep(0.5)
        raise StackError(
            f"{self.name} did not become ready within {timeout or self.ready_timeout:.0f}s at "
            f"{self.endpoint} ({detail}); see {self.dirs.log_file}:\n{self.process.log_tail()}"
        )

    def stop(self) -> bool:
        return self.process.stop()

    def health(self) -> Health:
        running = self.process.is_running()
        healthy, version, detail = self.probe() if running else (False, None, "not running")
        return Health(
            name=self.name,
            healthy=healthy,
            running=running,
            version=version,
            endpoint=self.endpoint,
            log_file=str(self.dirs.log_file),
            detail=detail,
        )


def write_if_changed(path: Path, text: str) -> None:
    """Write a generated config file, leaving it untouched when identical."""
    if path.exists() and path.read_text() == text:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
