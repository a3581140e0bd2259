"""Build dead-letter records: the payload kept verbatim, every problem with its field path."""

from __future__ import annotations

import base64
import re
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from schemas.catalogue import DEAD_LETTER_MAX_BYTES
from schemas.dead_letter import DeadLetter, FieldProblem, Origin
from schemas.field_error import FieldError

_PRODUCER = re.compile(rb'"producer_id"\s*:\s*"([A-Za-z0-9_.:\-]{1,128})"')
_UNION_TAG_ERRORS = frozenset(("union_tag_not_found", "union_tag_invalid"))

# DeadLetter's own pydantic-core validator: the same validation as DeadLetter(**fields)
# without BaseModel.__init__'s Python wrapper, a quarter of the record's cost.
_validate_dead_letter = DeadLetter.__pydantic_validator__.validate_python

Hint = tuple[str, str] | str | None
"""What an error's ``ctx`` adds to its problem: a FieldError's (field, message), a union's tag field."""

# Problems already built, by everything they are made of. A broken producer repeats the same
# errors, and building a validated FieldProblem with its dotted path cost more than pydantic
# raising the error (bench/validation_throughput.py). FieldProblem is frozen: sharing is safe.
# Bounded: a problem naming a producer's own key or tag is only memoised when short, and the
# memo starts again when full.
_MEMO: dict[tuple[tuple[int | str, ...], str, str, Hint], FieldProblem] = {}
_MEMO_ENTRIES = 4096
_MEMO_CHARS = 256


def _problem(loc: tuple[int | str, ...], kind: str, msg: str, hint: Hint) -> FieldProblem:
    path = ".".join([str(part) for part in loc])
    message = msg
    if isinstance(hint, tuple):
        # A cross-field check: pydantic puts it at the model; point at the field it names.
        field, message = hint
        path = f"{path}.{field}" if loc else field
    elif hint is not None:
        # A missing or unknown `kind`: pydantic reports it at the union, name the tag field.
        path = f"{path}.{hint}" if loc else hint
    return FieldProblem(path=path, type=kind, message=message)


# Whole error lists already turned into problems, by pydantic's JSON of the errors (without
# inputs): a broken producer sends the same mistakes again and again, and that JSON costs a
# third of walking ``errors()`` (bench/validation_throughput.py). Bounded like _MEMO. Not for
# errors carrying an exception (``"ctx":{"error":...}``): the JSON has only its text, and a
# FieldError's class, not its text, decides the path.
_LISTS: dict[str, tuple[FieldProblem, ...]] = {}
_LISTS_ENTRIES = 1024
_LISTS_CHARS = 2048


def problems_from(exc: ValidationError) -> list[FieldProblem]:
    """Every error of a pydantic validation, with a dotted field path."""
    errors_json = exc.json(include_url=False, include_input=False)
    known = _LISTS.get(errors_json)
    if known is not None:
        return list(known)
    problems = _problems(exc)
    # In JSON text, `"error":` unescaped can only be a key: an exception in a ctx.
    if len(errors_json) <= _LISTS_CHARS and '"error":' not in errors_json:
        if len(_LISTS) >= _LISTS_ENTRIES:
            _LISTS.clear()
        _LISTS[errors_json] = tuple(problems)
    return problems


def _problems(exc: ValidationError) -> list[FieldProblem]:
    problems = []
    for error in exc.errors(include_url=False, include_input=False):
        kind = error["type"]
        ctx: dict[str, Any] | None = error.get("ctx")
        hint: Hint = None
        if ctx:
            ctx_error = ctx.get("error")
            if isinstance(ctx_error, FieldError):
                hint = (ctx_error.field, ctx_error.message)
            elif kind in _UNION_TAG_ERRORS and "discriminator" in ctx:
                hint = str(ctx["discriminator"]).strip("'")
        key = (error["loc"], kind, error["msg"], hint)
        problem = _MEMO.get(key)
        if problem is None:
            problem = _problem(*key)
            if len(problem.path) + len(problem.message) <= _MEMO_CHARS:
                if len(_MEMO) >= _MEMO_ENTRIES:
                    _MEMO.clear()
                _MEMO[key] = problem
        problems.append(problem)
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
    match = _PRODUCER.search(raw, 0, 4096)  # the first 4 KiB, without copying them
    record: DeadLetter = _validate_dead_letter(
        {
            "family": family,
            "stage": stage,
            "reason": f"{first.path}: {first.message}" if first.path else first.message,
            "errors": problems,
            "payload": payload,
            "payload_encoding": encoding,
            "payload_size": len(raw),
            "producer_id": match.group(1).decode() if match else None,
            "origin": origin,
            "failed_at": now,
        }
    )
    return record


LETTER_FITS = DEAD_LETTER_MAX_BYTES - 64 * 1024
"""A dead letter's JSON at most this long fits in a record of zc.deadletter (key and batch included)."""


def fitting_json(letter: DeadLetter) -> bytes:
    """The dead letter as JSON, its payload in base64 if, as escaped text, it would not fit in
    a record of the dead-letter topic: a control character takes 6 bytes in JSON, and a
    reading of 10 MiB of them made a dead letter of 62 MB that Kafka refused in turn: lost
    (issue 19). In base64 any payload Mosquitto takes fits. The bridge and validation both
    write dead letters this way."""
    value = letter.model_dump_json(by_alias=True).encode()
    if len(value) > LETTER_FITS and letter.payload_encoding == "utf-8":
        payload = base64.b64encode(letter.payload.encode()).decode("ascii")
        as_base64 = letter.model_copy(update={"payload": payload, "payload_encoding": "base64"})
        value = as_base64.model_dump_json(by_alias=True).encode()
    return value
