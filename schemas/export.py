"""Write the contracts to a folder: one JSON Schema per event type and the AsyncAPI document."""

from __future__ import annotations

import json
from pathlib import Path

from schemas.asyncapi import Servers, asyncapi_document
from schemas.json_schemas import standalone_schemas


def export_contracts(directory: Path, servers: Servers, version: str) -> list[Path]:
    """Write ``<Type>.schema.json`` files and ``asyncapi.json``; return the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in standalone_schemas().items():
        path = directory / f"{name}.schema.json"
        path.write_text(json.dumps(schema, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        written.append(path)
    path = directory / "asyncapi.json"
    path.write_text(
        json.dumps(asyncapi_document(servers, version), indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    written.append(path)
    return written
