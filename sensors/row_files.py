"""Rows of a data file as dictionaries: CSV with a header, a JSON array of objects, or JSON lines."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import Any

FORMATS = ("csv", "json", "jsonl")


def file_format(path: Path, declared: str | None = None) -> str:
    """The declared format, else the one the file's extension names."""
    found = declared or {".csv": "csv", ".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl"}.get(
        path.suffix.lower()
    )
    if found not in FORMATS:
        raise ValueError(
            f"{path}: cannot tell its format from the extension; declare format = one of {FORMATS}"
        )
    return found


def read_rows(path: Path, fmt: str, limit: int | None = None) -> Iterator[dict[str, Any]]:
    """The file's rows in file order (the first ``limit`` only, if given)."""
    if fmt == "csv":
        with path.open(newline="", encoding="utf-8-sig") as handle:
            yield from islice(csv.DictReader(handle), limit)
    elif fmt == "jsonl":
        with path.open(encoding="utf-8") as handle:
            lines = (line for line in handle if line.strip())
            yield from (json.loads(line) for line in islice(lines, limit))
    else:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, list) or not all(isinstance(row, dict) for row in data):
            raise ValueError(f"{path}: a JSON file to replay must be an array of objects")
        yield from islice(data, limit)
