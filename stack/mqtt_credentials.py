"""The local stack's generated MQTT passwords: made once, kept under its home, readable by its owner only.

``<stack home>/mosquitto/secrets/principals.json`` (folder 0700, file 0600) maps each
service principal (admin, bridge, sink, reader, gateway) to its password. The broker holds
only salted hashes of them (``dynamic-security.json``); the service's processes read them
here through ``zerocarbon/component_configs.py`` unless a ``ZC_MQTT_*_PASSWORD`` is set.
Deleting an entry (or the file) and running ``zerocarbon stack up`` again rotates it.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Iterable
from pathlib import Path

from stack.secret_files import ensure_passwords, read_passwords

# As the plugin hashes them (mosquitto_ctrl writes the same): PBKDF2-SHA512, 101 iterations.
HASH_ITERATIONS = 101
SALT_BYTES = 12


def secrets_dir(stack_home: Path) -> Path:
    return stack_home / "mosquitto" / "secrets"


def credentials_file(stack_home: Path) -> Path:
    return secrets_dir(stack_home) / "principals.json"


def read_generated(stack_home: Path) -> dict[str, str]:
    """Every generated password (principal -> password); empty before the first ``stack up``."""
    return read_passwords(credentials_file(stack_home))


def ensure_generated(stack_home: Path, principals: Iterable[str]) -> dict[str, str]:
    """The generated passwords, with one made for every principal that has none yet."""
    return ensure_passwords(credentials_file(stack_home), principals)


def password_hash(password: str, salt: bytes | None = None) -> dict[str, str | int]:
    """The plugin's stored form of a password: salted hash, salt and iterations (base64)."""
    salt = salt if salt is not None else secrets.token_bytes(SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, HASH_ITERATIONS)
    return {
        "password": base64.b64encode(digest).decode(),
        "salt": base64.b64encode(salt).decode(),
        "iterations": HASH_ITERATIONS,
    }


def hash_matches(stored: dict[str, object], password: str) -> bool:
    """Whether a client entry of ``dynamic-security.json`` holds the hash of ``password``."""
    try:
        salt = base64.b64decode(str(stored["salt"]))
        iterations = int(str(stored["iterations"]))
    except (KeyError, ValueError):
        return False
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    return secrets.compare_digest(base64.b64encode(digest).decode(), str(stored.get("password", "")))
