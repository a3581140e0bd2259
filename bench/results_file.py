"""Save a benchmark's figures as JSON in bench/results/, one file per run."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def save_results(name: str, results: Any, folder: Path = RESULTS) -> Path:
    """Write ``results`` to ``<folder>/<name>-<UTC time>.json`` (default folder: bench/results/),
    print and return the path."""
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / f"{name}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"saved {out}")
    return out


def print_figures(result: dict[str, Any], width: int = 28) -> None:
    """One line per figure of ``result``, the machine's description left to the JSON."""
    for key, value in result.items():
        if key != "machine":
            print(f"{key:<{width}} {value}")


def report(name: str, result: dict[str, Any], width: int = 28) -> Path:
    """Print ``result``'s figures and save it (``save_results``)."""
    print_figures(result, width)
    return save_results(name, result)
