"""Install Debian packages the stack needs (Mosquitto and its clients, kcat), idempotently."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path

from stack.errors import StackError


def _apt_prefix() -> list[str]:
    if os.geteuid() == 0:
        return []
    sudo = shutil.which("sudo")
    if sudo is None:
        raise StackError(
            "installing Debian packages needs root: run `sudo zerocarbon stack install` once, "
            "or install them yourself (apt-get install mosquitto mosquitto-clients kcat)"
        )
    return [sudo, "-n"]


def ensure_packages(wanted: dict[str, str]) -> list[str]:
    """Install each package whose marker binary is missing; return the packages installed.

    ``wanted`` maps a Debian package name to an executable path it provides, the cheap test
    that it is already there.
    """
    missing = [pkg for pkg, binary in wanted.items() if not Path(binary).exists()]
    if not missing:
        return []
    prefix = _apt_prefix()
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    print(f"[stack] installing Debian packages: {' '.join(missing)}", flush=True)
    # The package lists may be absent on a fresh machine; refresh them once if install fails.
    if _apt_install(prefix, missing, env) != 0:
        subprocess.run([*prefix, "apt-get", "update", "-qq"], env=env, check=False)
        if _apt_install(prefix, missing, env) != 0:
            raise StackError(
                f"apt-get could not install {' '.join(missing)}; run "
                f"`apt-get update && apt-get install {' '.join(missing)}` and retry"
            )
    return missing


def _apt_install(prefix: Iterable[str], packages: list[str], env: dict[str, str]) -> int:
    argv = [*prefix, "apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages]
    return subprocess.run(argv, env=env, check=False, stdout=subprocess.DEVNULL).returncode
