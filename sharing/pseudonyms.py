"""Keyed pseudonyms: a household meter's id as HMAC-SHA256 under a versioned key.

A plain hash of a meter id can be reversed by hashing every id a distributor issues; a keyed
one cannot without the key, which lives in its own file outside the data (mode 0600), never
in Kafka. The pseudonym names its key's version (``ps2:...``), so a party can tell that two
pseudonyms under different keys are not comparable; rotating adds a key and makes it the
current one, after which the same meter gets another pseudonym and old copies no longer link.
"""

from __future__ import annotations

import base64
import hmac
import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

KEY_BYTES = 32
PSEUDONYM_HEX = 32
"""128 bits of the HMAC: collisions among a territory's meters are out of reach."""


class KeyFileError(RuntimeError):
    """The key file is missing, unreadable or malformed: say which and how to make one."""


@dataclass(frozen=True)
class PseudonymKeys:
    """The keys by version, and the version used for new pseudonyms."""

    current: int
    keys: dict[int, bytes] = field(repr=False)

    def __post_init__(self) -> None:
        if self.current not in self.keys:
            raise KeyFileError(f"the current key version {self.current} has no key")
        if any(len(key) < KEY_BYTES for key in self.keys.values()):
            raise KeyFileError(f"every key has at least {KEY_BYTES} bytes")

    def rotated(self) -> PseudonymKeys:
        version = max(self.keys) + 1
        return PseudonymKeys(version, {**self.keys, version: secrets.token_bytes(KEY_BYTES)})


class Pseudonymiser:
    """Pseudonyms under the current key; memoised, as a meter reports many times a day."""

    def __init__(self, keys: PseudonymKeys) -> None:
        self.version = keys.current
        self._key = keys.keys[keys.current]
        self._known: dict[str, str] = {}

    def __call__(self, value: str) -> str:
        pseudonym = self._known.get(value)
        if pseudonym is None:
            digest = hmac.digest(self._key, value.encode(), "sha256").hex()[:PSEUDONYM_HEX]
            pseudonym = f"ps{self.version}:{digest}"
            if len(self._known) < 1_000_000:
                self._known[value] = pseudonym
        return pseudonym


def read_keys(path: Path) -> PseudonymKeys:
    """The keys in ``path``; KeyFileError says what is wrong."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise KeyFileError(
            f"no pseudonym key file at {path}: `zerocarbon agreements rotate-key` makes one"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise KeyFileError(f"the pseudonym key file {path} cannot be read: {exc}") from None
    try:
        data = json.loads(text)
        keys = {int(version): base64.b64decode(key, validate=True) for version, key in data["keys"].items()}
        return PseudonymKeys(int(data["current"]), keys)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise KeyFileError(f"{path} is not a pseudonym key file ({{current, keys}}): {exc}") from None


def write_keys(path: Path, keys: PseudonymKeys) -> None:
    """Write ``keys`` to ``path`` (0600, in a 0700 folder), replacing it atomically."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    data = {
        "current": keys.current,
        "keys": {str(v): base64.b64encode(k).decode() for v, k in sorted(keys.keys.items())},
    }
    temporary = path.with_name(path.name + ".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)  # a temporary file left by a crash keeps its mode otherwise
    with os.fdopen(descriptor, "w", encoding="utf-8") as out:
        json.dump(data, out)
        out.flush()
        os.fsync(out.fileno())
    os.replace(temporary, path)


def keys_at(path: Path) -> PseudonymKeys:
    """The keys in ``path``, made (one key, version 1) if there is no file yet."""
    if not path.exists():
        write_keys(path, PseudonymKeys(1, {1: secrets.token_bytes(KEY_BYTES)}))
    return read_keys(path)


def first_key(path: Path, version: int) -> PseudonymKeys:
    """A key file with one key, of ``version`` (above a lost file's: sharing/key_history.py)."""
    keys = PseudonymKeys(version, {version: secrets.token_bytes(KEY_BYTES)})
    write_keys(path, keys)
    return keys


def rotate_keys(path: Path) -> PseudonymKeys:
    """Add a key to ``path`` and make it current (the first key if there is no file)."""
    keys = keys_at(path) if path.exists() else None
    new = keys.rotated() if keys is not None else keys_at(path)
    if keys is not None:
        write_keys(path, new)
    return new
