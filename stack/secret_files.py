"""Secrets the stack generates or receives, on disk: readable by their owner only, written whole."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import Iterable
from pathlib import Path

from stack.errors import StackError


def write_secret(path: Path, value: str) -> bool:
    """Write ``value`` to ``path`` (folder 0700, file 0600), atomically: a reader never finds
    half a secret. False when the file already held it (its mode is put right all the same)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.parent.chmod(0o700)
    with contextlib.suppress(FileNotFoundError):
        if path.read_text(encoding="utf-8") == value:
            path.chmod(0o600)
            return False
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    partial.unlink(missing_ok=True)
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as out:
        out.write(value)
        out.flush()
        os.fsync(out.fileno())
    os.replace(partial, path)
    return True


def new_secret() -> str:
    """A password for a principal or a device: 192 random bits, URL-safe."""
    return secrets.token_urlsafe(24)


def read_passwords(path: Path) -> dict[str, str]:
    """A generated passwords file (principal -> password); empty when there is none yet."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise StackError(
            f"{path} cannot be read ({type(exc).__name__}); delete it and run `zerocarbon stack up` "
            "to generate the passwords again"
        ) from exc
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise StackError(f"{path} is not a JSON object of passwords; delete it and run `zerocarbon stack up`")
    return {str(k): v for k, v in data.items()}


def ensure_passwords(path: Path, principals: Iterable[str]) -> dict[str, str]:
    """The passwords of ``path``, with one made for every principal that has none yet."""
    known = read_passwords(path)
    missing = [p for p in principals if p not in known]
    if missing:
        known.update({p: new_secret() for p in missing})
        write_secret(path, json.dumps(known, indent=2, sort_keys=True) + "\n")
    return known
