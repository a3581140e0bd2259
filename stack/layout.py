"""Where each local service keeps its installation, data, configuration, log and pid file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ServiceDirs:
    """The files of one running service under the stack's home."""

    name: str
    home: Path
    data: Path

    @property
    def config_dir(self) -> Path:
        return self.home / "config"

    @property
    def log_file(self) -> Path:
        return self.home / "logs" / f"{self.name}.log"

    @property
    def pid_file(self) -> Path:
        return self.home / f"{self.name}.pid"

    def create(self) -> None:
        for folder in (self.home, self.data, self.config_dir, self.log_file.parent):
            folder.mkdir(parents=True, exist_ok=True)


def service_dirs(stack_home: Path, name: str, data_override: Path | None) -> ServiceDirs:
    """The directories of service ``name``; its data folder may be moved by configuration."""
    home = stack_home / name
    return ServiceDirs(name=name, home=home, data=data_override or home / "data")
