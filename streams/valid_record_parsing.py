"""Reading back the records the validation stage wrote: types checked, model checks not repeated.

A record on ``zc.valid.<family>`` is a JSON array that validation produced from events it
had fully validated: cross-field checks passed and timestamps normalised to UTC ("Z"). The
indicator stage parses it again into the same event classes, but running the envelope's
Python model validator a second time cost about 1.3 µs per reading, a tenth of the indicator
stage's time (bench/indicator_throughput.py). These validators are the families' own
pydantic-core schemas with that validator taken out: every field type, pattern and bound is
still checked, so a record that is not ours is still refused as unreadable.
"""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter
from pydantic_core import SchemaValidator

from schemas.envelope import Envelope
from streams.validation_agent import VALID_ARRAY

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
