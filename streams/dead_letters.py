"""Build dead-letter records: the payload kept verbatim, every problem with its field path."""

from __future__ import annotations

import base64
import re
from datetime import datetime

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from schemas.dead_letter import DeadLetter, FieldProblem, Origin
from schemas.field_error import FieldError

_PRODUCER = re.compile(rb'"producer_id"\s*:\s*"([A-Za-z0-9_.:\-]{1,128})"')


def _path(error: ErrorDetails) -> str:
    loc = [str(part) for part in error["loc"]]
    ctx = error.get("ctx") or {}
    ctx_error = ctx.get("error")
    if isinstance(ctx_error, FieldError):
        # A cross-field check: pydantic puts it at the model; point at the field it names.
        loc.append(ctx_error.field)
    elif error["type"] in ("union_tag_not_found", "union_tag_invalid") and "discriminator" in ctx:
        # A missing or unknown `kind`: pydantic reports it at the union, name the tag field.
        loc.append(str(ctx["discriminator"]).strip("'"))
    return ".".join(loc)


def problems_from(exc: ValidationError) -> list[FieldProblem]:
    """Every error of a pydantic validation, with a dotted field path."""
    problems = []
    for error in exc.errors(include_url=False, include_input=False):
        ctx_error = (error.get("ctx") or {}).get("error")
        message = ctx_error.message if isinstance(ctx_error, FieldError) else error["msg"]
        problems.append(FieldProblem(path=_path(error), type=error["type"], message=message))
    return problems


def dead_letter(
    *,
    family: str,
    stage: str,
    raw: bytes,
    problems: list[FieldProblem],
    origin: Origin,
    now: datetime,
) -> DeadLetter:
    """A dead-letter record for ``raw``; the payload is base64 when it is not valid UTF-8."""
    try:
        payload, encoding = raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        payload, encoding = base64.b64encode(raw).decode("ascii"), "base64"
    first = problems[0]
    match = _PRODUCER.search(raw[:4096])
    return DeadLetter(
        family=family,
        stage=stage,
        reason=f"{first.path}: {first.message}" if first.path else first.message,
        errors=problems,
        payload=payload,
        payload_encoding=encoding,
        payload_size=len(raw),
        producer_id=match.group(1).decode() if match else None,
        origin=origin,
        failed_at=now,
    )
