"""The Quix Streams peer's Python: the `bench` extra of pyproject.toml in a virtualenv of its own.

quixstreams 3.x pins ``pydantic<2.14`` and ``pydantic-settings<2.16``; installed in .venv it
would downgrade the service's pydantic, and the suite would then measure our validation on
another pydantic than the one we ship. So the extra goes into its own virtualenv under the
cache folder (``$ZC_CACHE_DIR/bench/peers-<hash of the extra and the install policy>``),
created on first use from this interpreter's base Python, checked with ``pip check``, and
reused while the extra is unchanged. The peer imports nothing of the service, so nothing
else is installed there.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

from config.settings import Settings
from stack.install_step import InstallStep

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def bench_requirements() -> list[str]:
    """The `bench` extra, as pyproject.toml declares it."""
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    return list(project["optional-dependencies"]["bench"])


def peer_python(settings: Settings) -> Path:
    """The interpreter of the peer's virtualenv, created and installed if needed."""
    requirements = bench_requirements()
    # The step's key also covers its environment policy (stack/install_step.py).
    step = InstallStep(name="bench-peers", values=(sys.version, *requirements))
    venv = settings.cache_dir / "bench" / f"peers-{step.key()}"
    python = venv / "bin" / "python"
    stamp = venv / ".installed"
    if not stamp.exists():
        print(f"[bench] installing the bench extra ({', '.join(requirements)}) in {venv}", flush=True)
        env = step.environment()
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], env=env, check=True)
        pip = [str(python), "-m", "pip", "-q"]
        subprocess.run([*pip, "install", *requirements], env=env, check=True)
        subprocess.run([*pip, "check"], env=env, check=True)
        stamp.write_text("\n".join(requirements) + "\n")
    return python
