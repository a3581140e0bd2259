"""Secrets the stack generates or receives, on disk: readable by their owner only, written whole."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


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
