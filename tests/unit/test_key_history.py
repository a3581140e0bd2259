"""The key versions a lost key file's successor must stay above (sharing/key_history.py)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from sharing.agreement_records import audit_release
from sharing.agreement_terms import Detail, Purpose
from sharing.agreements import parse_agreement
from sharing.key_history import KeyHistory, read_history
from sharing.pseudonyms import first_key, read_keys
from sharing.sharing_engine import ReleaseTally
from streams.indicators.catalogue import INDICATORS
from tests.agreement_documents import agreement_document


def test_releases_count_and_the_highest_version_they_name_wins() -> None:
    values = [
        json.dumps({"event": "release", "pseudonym_key": 3}).encode(),
        json.dumps({"event": "grant", "pseudonym_key": 9}).encode(),  # no release: no key
        b"not json",
        json.dumps([1, 2]).encode(),
        json.dumps({"event": "release", "pseudonym_key": True}).encode(),  # a bool is no version
        json.dumps({"event": "release", "pseudonym_key": 5}).encode(),
        json.dumps({"event": "release"}).encode(),  # audited before releases named their key
    ]
    assert read_history(values) == KeyHistory(4, 5)
    assert read_history([]) == KeyHistory(0, 0)


def test_agreements_granted_before_the_stage_first_starts_are_no_release() -> None:
    """A first start after `agreements grant` makes the first key: nothing was shared yet."""
    grants = [json.dumps({"event": "grant", "party": "lru"}).encode()] * 3
    assert not read_history(grants).shared_before


def test_a_successor_is_above_every_version_named_and_above_one_once_anything_was_shared() -> None:
    assert KeyHistory(0, 0).version_after_loss() == 1  # nothing shared: a first key
    assert KeyHistory(12, 0).version_after_loss() == 2  # shared before versions were recorded
    assert KeyHistory(12, 4).version_after_loss() == 5
    assert not KeyHistory(0, 0).shared_before and KeyHistory(1, 0).shared_before


def test_a_release_audited_names_its_key_version_and_a_first_key_takes_the_version_given(
    tmp_path: Path,
) -> None:
    document = agreement_document(
        "keyed", party="lru", detail=Detail.PSEUDONYMISED_EVENTS, targets=["urn:zerocarbon:family:energy"],
        purposes=[Purpose.SCIENTIFIC_RESEARCH], start=datetime(2026, 1, 1, tzinfo=UTC),
    )  # fmt: skip
    agreement = parse_agreement(document, INDICATORS)
    record = audit_release(agreement, ReleaseTally(), datetime.now(UTC), 6)
    assert json.loads(record)["pseudonym_key"] == 6 and read_history([record]) == KeyHistory(1, 6)
    keys = first_key(tmp_path / "keys.json", 7)
    assert keys.current == 7 and read_keys(tmp_path / "keys.json") == keys
