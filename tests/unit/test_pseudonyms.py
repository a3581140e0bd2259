"""Keyed pseudonyms (sharing/pseudonyms.py): the same meter gets the same pseudonym under one
key and another under any other key, the pseudonym names its key's version, and the key file
is written private, read back whole, made once, rotated without losing the old keys, and
refused with a message saying what is wrong.

Why: a pseudonym that changed between records would break a research party's series, one
that stayed the same after a rotation would link copies the rotation meant to unlink, and a
key file readable by others would let anyone reverse the pseudonyms of every known meter id.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import stat
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sharing.pseudonyms import (
    KEY_BYTES,
    KeyFileError,
    Pseudonymiser,
    PseudonymKeys,
    keys_at,
    read_keys,
    rotate_keys,
    write_keys,
)

KEY_A = bytes(range(32))
KEY_B = bytes(range(1, 33))
PSEUDONYM = re.compile(r"^ps(\d+):([0-9a-f]{32})$")
METER_IDS = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=40)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@settings(max_examples=200, deadline=None)
@given(METER_IDS)
def test_a_pseudonym_is_the_hmac_sha256_of_the_value_under_the_current_key(meter_id: str) -> None:
    pseudonym = Pseudonymiser(PseudonymKeys(1, {1: KEY_A}))(meter_id)
    digest = hmac.new(KEY_A, meter_id.encode(), hashlib.sha256).hexdigest()
    assert pseudonym == f"ps1:{digest[:32]}"
    assert PSEUDONYM.match(pseudonym)


@settings(max_examples=200, deadline=None)
@given(METER_IDS)
def test_one_key_gives_the_same_pseudonym_every_time_and_in_every_pseudonymiser(meter_id: str) -> None:
    first = Pseudonymiser(PseudonymKeys(1, {1: KEY_A}))
    assert first(meter_id) == first(meter_id) == Pseudonymiser(PseudonymKeys(1, {1: KEY_A}))(meter_id)


@settings(max_examples=200, deadline=None)
@given(METER_IDS)
def test_another_key_gives_another_pseudonym(meter_id: str) -> None:
    under_a = Pseudonymiser(PseudonymKeys(1, {1: KEY_A}))(meter_id)
    under_b = Pseudonymiser(PseudonymKeys(1, {1: KEY_B}))(meter_id)
    assert under_a != under_b


@settings(max_examples=200, deadline=None)
@given(st.lists(METER_IDS, min_size=2, max_size=20, unique=True))
def test_distinct_values_get_distinct_pseudonyms(meter_ids: list[str]) -> None:
    pseudonymise = Pseudonymiser(PseudonymKeys(1, {1: KEY_A}))
    assert len({pseudonymise(m) for m in meter_ids}) == len(meter_ids)


def test_the_pseudonym_names_the_version_of_its_key() -> None:
    keys = PseudonymKeys(7, {3: KEY_B, 7: KEY_A})
    pseudonym = Pseudonymiser(keys)("PDL-12345678901234")
    match = PSEUDONYM.match(pseudonym)
    assert match is not None and match.group(1) == "7"
    digest = hmac.new(KEY_A, b"PDL-12345678901234", hashlib.sha256).hexdigest()[:32]
    assert match.group(2) == digest  # the current key's, not version 3's


def test_after_a_rotation_the_same_meter_gets_another_pseudonym_naming_the_new_version() -> None:
    keys = PseudonymKeys(1, {1: KEY_A})
    rotated = keys.rotated()
    assert rotated.current == 2 and rotated.keys[1] == KEY_A and len(rotated.keys[2]) == KEY_BYTES
    before, after = Pseudonymiser(keys)("PDL-1"), Pseudonymiser(rotated)("PDL-1")
    assert before.startswith("ps1:") and after.startswith("ps2:")
    assert before[4:] != after[4:]
    assert rotated.rotated().current == 3


def test_a_rotation_follows_the_highest_version_not_the_current_one() -> None:
    rotated = PseudonymKeys(1, {1: KEY_A, 4: KEY_B}).rotated()
    assert rotated.current == 5 and set(rotated.keys) == {1, 4, 5}


def test_each_rotation_draws_a_new_key() -> None:
    keys = PseudonymKeys(1, {1: KEY_A})
    assert keys.rotated().keys[2] != keys.rotated().keys[2]


@pytest.mark.parametrize(
    ("current", "keys", "problem"),
    [
        (2, {1: KEY_A}, "the current key version 2 has no key"),
        (1, {1: KEY_A[:31]}, f"at least {KEY_BYTES} bytes"),
        (1, {1: KEY_A, 2: b""}, f"at least {KEY_BYTES} bytes"),
    ],
)
def test_keys_without_a_current_key_or_with_a_short_key_are_refused(
    current: int, keys: dict[int, bytes], problem: str
) -> None:
    with pytest.raises(KeyFileError, match=problem):
        PseudonymKeys(current, keys)


def test_the_keys_are_not_in_their_repr() -> None:
    assert repr(PseudonymKeys(1, {1: KEY_A})) == "PseudonymKeys(current=1)"


# --- The key file -------------------------------------------------------------------------


def test_keys_written_are_read_back_from_a_file_only_its_owner_can_read(tmp_path: Path) -> None:
    path = tmp_path / "secrets" / "pseudonym-keys.json"
    keys = PseudonymKeys(2, {1: KEY_A, 2: KEY_B + b"longer than 32 bytes"})
    write_keys(path, keys)
    assert read_keys(path) == keys
    assert _mode(path) == 0o600
    assert _mode(path.parent) == 0o700
    assert [p.name for p in path.parent.iterdir()] == ["pseudonym-keys.json"]  # no temporary left


def test_the_key_file_holds_the_current_version_and_base64_keys(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    write_keys(path, PseudonymKeys(1, {1: KEY_A}))
    assert json.loads(path.read_text(encoding="utf-8")) == {
        "current": 1,
        "keys": {"1": base64.b64encode(KEY_A).decode()},
    }


def test_writing_replaces_the_file_whole(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    write_keys(path, PseudonymKeys(1, {1: KEY_A, 2: KEY_B}))
    write_keys(path, PseudonymKeys(1, {1: KEY_B}))
    assert read_keys(path) == PseudonymKeys(1, {1: KEY_B})
    assert _mode(path) == 0o600


def test_the_key_file_is_private_even_if_a_temporary_file_was_left_behind(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    stale = tmp_path / "keys.json.tmp"
    stale.write_text("stale", encoding="utf-8")
    stale.chmod(0o644)
    write_keys(path, PseudonymKeys(1, {1: KEY_A}))
    assert read_keys(path) == PseudonymKeys(1, {1: KEY_A})
    assert _mode(path) == 0o600


def test_keys_at_makes_one_key_once_then_reads_the_same_file(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "pseudonyms.json"
    made = keys_at(path)
    assert made.current == 1 and set(made.keys) == {1} and len(made.keys[1]) == KEY_BYTES
    assert _mode(path) == 0o600
    text = path.read_text(encoding="utf-8")
    assert keys_at(path) == made
    assert path.read_text(encoding="utf-8") == text


def test_keys_at_reads_an_existing_file_without_touching_it(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    keys = PseudonymKeys(3, {2: KEY_A, 3: KEY_B})
    write_keys(path, keys)
    before = path.stat().st_mtime_ns
    assert keys_at(path) == keys
    assert path.stat().st_mtime_ns == before


def test_rotating_keeps_the_old_keys_and_makes_a_new_one_current(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    first = keys_at(path)
    rotated = rotate_keys(path)
    assert rotated.current == 2
    assert rotated.keys[1] == first.keys[1] and rotated.keys[2] != first.keys[1]
    assert read_keys(path) == rotated
    again = rotate_keys(path)
    assert again.current == 3 and {v: again.keys[v] for v in (1, 2)} == rotated.keys
    assert read_keys(path) == again and _mode(path) == 0o600


def test_rotating_without_a_file_makes_the_first_key(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    keys = rotate_keys(path)
    assert keys.current == 1 and set(keys.keys) == {1}
    assert read_keys(path) == keys


def test_a_missing_key_file_says_how_to_make_one(tmp_path: Path) -> None:
    path = tmp_path / "absent.json"
    with pytest.raises(KeyFileError) as caught:
        read_keys(path)
    assert str(path) in str(caught.value) and "zerocarbon agreements rotate-key" in str(caught.value)


GOOD_KEY = base64.b64encode(KEY_A).decode()


@pytest.mark.parametrize(
    "content",
    [
        "",
        "not json",
        "[]",
        "null",
        json.dumps({"keys": {"1": GOOD_KEY}}),
        json.dumps({"current": 1}),
        json.dumps({"current": "one", "keys": {"1": GOOD_KEY}}),
        json.dumps({"current": 1, "keys": [GOOD_KEY]}),
        json.dumps({"current": 1, "keys": {"first": GOOD_KEY}}),
        json.dumps({"current": 1, "keys": {"1": "not base64!"}}),
        json.dumps({"current": 1, "keys": {"1": 12}}),
    ],
    ids=[
        "empty",
        "not-json",
        "a-list",
        "null",
        "no-current",
        "no-keys",
        "current-not-a-number",
        "keys-a-list",
        "version-not-a-number",
        "key-not-base64",
        "key-not-text",
    ],
)
def test_a_malformed_key_file_is_refused_naming_it_and_its_shape(tmp_path: Path, content: str) -> None:
    path = tmp_path / "keys.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(KeyFileError) as caught:
        read_keys(path)
    assert str(caught.value).startswith(f"{path} is not a pseudonym key file ({{current, keys}}): ")


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ({"current": 2, "keys": {"1": GOOD_KEY}}, "the current key version 2 has no key"),
        ({"current": 1, "keys": {}}, "the current key version 1 has no key"),
        ({"current": 1, "keys": {"1": base64.b64encode(b"short").decode()}}, f"at least {KEY_BYTES} bytes"),
    ],
)
def test_a_key_file_without_its_current_key_or_with_a_short_key_is_refused(
    tmp_path: Path, data: dict[str, object], problem: str
) -> None:
    path = tmp_path / "keys.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(KeyFileError, match=problem):
        read_keys(path)


@pytest.mark.parametrize("kind", ["not-utf8", "a-folder"])
def test_an_unreadable_key_file_is_refused_as_a_key_file_error(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "keys.json"
    if kind == "a-folder":
        path.mkdir()
    else:
        path.write_bytes(b'{"current": 1, "keys": {"1": "\xff"}}')
    with pytest.raises(KeyFileError) as caught:
        read_keys(path)
    assert str(path) in str(caught.value)
