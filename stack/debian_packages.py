"""Install Debian packages the stack needs (Mosquitto and its clients, kcat), idempotently."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

from stack.errors import StackError
from stack.install_step import step_environment

# What the test suite needs beside the stack: the operators' page is driven in Debian's
# chromium through its chromedriver (Selenium downloads no browser). `make test` installs them.
TEST_PACKAGES: dict[str, str] = {"chromium": "/usr/bin/chromium", "chromium-driver": "/usr/bin/chromedriver"}
# What `make lint` needs: promtool checks the alert rules (Prometheus' own package ships it).
LINT_PACKAGES: dict[str, str] = {"prometheus": "/usr/bin/promtool"}


def _apt_prefix() -> list[str]:
    if os.geteuid() == 0:
        return []
    sudo = shutil.which("sudo")
    if sudo is None:
        raise StackError(
            "installing Debian packages needs root: run `sudo zerocarbon stack install` once, "
            "or install them yourself (apt-get install mosquitto mosquitto-clients kcat)"
        )
    # sudo resets the environment: the variable that keeps apt from asking goes through env.
    return [sudo, "-n", "env", "DEBIAN_FRONTEND=noninteractive"]


def ensure_packages(wanted: dict[str, str]) -> list[str]:
    """Install each package whose marker binary is missing; return the packages installed.

    ``wanted`` maps a Debian package name to an executable path it provides, the cheap test
    that it is already there.
    """
    missing = [pkg for pkg, binary in wanted.items() if not Path(binary).exists()]
    if not missing:
        return []
    prefix = _apt_prefix()
    env = step_environment(os.environ)
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


def main(argv: list[str] | None = None) -> int:
    """``python -m stack.debian_packages [lint]``: install the test suite's Debian packages
    (with ``lint``, the linters')."""
    wanted = LINT_PACKAGES if (argv if argv is not None else sys.argv[1:]) == ["lint"] else TEST_PACKAGES
    try:
        installed = ensure_packages(wanted)
    except StackError as exc:
        print(f"[test-tools] {exc}")
        return 1
    print(
        f"[test-tools] installed {' '.join(installed)}"
        if installed
        else "[test-tools] Debian packages present"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
