"""`zerocarbon simulate` run to completion by a test, and its printed report."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any


def simulate(*args: str) -> dict[str, Any]:
    """Run `zerocarbon simulate` with ``args``; its JSON report (the test fails with its stderr)."""
    done = subprocess.run(
        [sys.executable, "-m", "zerocarbon.cli", "simulate", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report: dict[str, Any] = json.loads(done.stdout)
    return report
