"""Releases and the audit name an agreement by its version: it must change with any term, and with
nothing else (key order, whitespace, escapes)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from sharing.agreements import agreement_version, canonical_json, load_agreement_file
from tests.unit.agreement_fixtures import (
    INDICATOR_NAMES,
    SAMPLES,
    Mutation,
    _changed,
    _constraint,
    _delete_within,
    _field_duty,
    _instant,
    _load,
    _sample,
    constraints,
    duties,
    permission_setting,
    setting,
)


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.stem)
def test_the_version_is_the_sha256_of_the_canonical_json(path: Path) -> None:
    document = json.loads(path.read_text(encoding="utf-8"))
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    agreement = load_agreement_file(path, INDICATOR_NAMES)
    assert canonical_json(document) == canonical
    assert agreement.version == hashlib.sha256(canonical).hexdigest() == agreement_version(document)
    assert len(agreement.version) == 64 and agreement.short_version == agreement.version[:16]


def _reversed_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _reversed_keys(value[k]) for k in reversed(list(value))}
    if isinstance(value, list):
        return [_reversed_keys(v) for v in value]
    return value


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.stem)
def test_the_version_does_not_change_with_key_order_whitespace_or_escapes(tmp_path: Path, path: Path) -> None:
    original = load_agreement_file(path, INDICATOR_NAMES)
    rewritten = tmp_path / path.name
    document = _reversed_keys(json.loads(path.read_text(encoding="utf-8")))
    text = json.dumps(document, indent="\t", separators=(" ,", " :\t"), ensure_ascii=True)
    rewritten.write_text(f"\n\n{text}\n  ", encoding="utf-8")
    assert rewritten.read_text(encoding="utf-8") != path.read_text(encoding="utf-8")
    assert load_agreement_file(rewritten, INDICATOR_NAMES).version == original.version


TERM_CHANGES: dict[str, Mutation] = {
    "retention": duties(drop=("delete",), add=(_delete_within("P364D"),)),
    "end": constraints(
        drop=("dateTime lt",), add=(_constraint("dateTime", "lt", _instant("2028-12-31T00:00:00+01:00")),)
    ),
    "start offset": constraints(
        drop=("dateTime gteq",), add=(_constraint("dateTime", "gteq", _instant("2026-01-01T00:00:00+00:00")),)
    ),
    "producer": constraints(drop=("zc:producer",), add=(_constraint("zc:producer", "eq", "enedis"),)),
    "purpose": constraints(drop=("purpose",), add=(_constraint("purpose", "eq", "zc:energy-management"),)),
    "target": permission_setting(
        "target", ["urn:zerocarbon:family:energy", "urn:zerocarbon:family:environment"]
    ),
    "omitted field": duties(drop=("field",), add=(_field_duty("zc:omit", ["ingestion_time", "commune"]),)),
    "attribution": duties(drop=("attribute",), add=({"action": "attribute", "zc:attributionText": "LRU"},)),
    "assignee": setting("assignee", "urn:zerocarbon:party:lru-lab-2"),
    "title": setting("dct:title", "Another title"),
}


def test_any_change_of_a_term_makes_a_new_version() -> None:
    original = _load(_sample("lru-energy-research")).version
    versions = {
        name: _load(_changed("lru-energy-research", change)).version for name, change in TERM_CHANGES.items()
    }
    assert original not in versions.values()
    assert len(set(versions.values())) == len(versions)
