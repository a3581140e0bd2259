"""Reading back the records the validation stage wrote: types checked, model checks not repeated.

A ``zc.valid.<family>`` record holds events validation fully checked (cross-field rules,
UTC timestamps), so these are the families' pydantic-core schemas without the envelope's
Python model validator, whose per-reading cost is not worth paying twice (bench/README.md).
Every field type, pattern and bound is still checked: a record not ours is still refused.
"""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter
from pydantic_core import SchemaValidator

from schemas.envelope import Envelope
from streams.validation.engine import VALID_ARRAY

_MODEL_CHECK = Envelope._normalise_and_check


def _without_model_checks(schema: Any) -> Any:
    """A copy of a core schema in which the envelope's after-validator wraps nothing any more."""
    if isinstance(schema, list):
        return [_without_model_checks(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    function = schema.get("function")
    if (
        schema.get("type") == "function-after"
        and isinstance(function, dict)
        and getattr(function.get("function"), "__func__", function.get("function")) is _MODEL_CHECK
    ):
        inner = dict(_without_model_checks(schema["schema"]))
        if "ref" in schema:
            inner["ref"] = schema["ref"]
        return inner
    return {key: _without_model_checks(value) for key, value in schema.items()}


def _trusted(adapter: TypeAdapter[Any]) -> SchemaValidator:
    stripped = _without_model_checks(adapter.core_schema)
    if stripped == adapter.core_schema:
        raise RuntimeError("the envelope's model validator was not found in the schema: parsing unchanged")
    return SchemaValidator(stripped)


VALID_RECORD_PARSERS: dict[str, SchemaValidator] = {family: _trusted(a) for family, a in VALID_ARRAY.items()}
"""Per family: parse a ``zc.valid.<family>`` record (a JSON array) into its event models."""
