"""Each kind of event an agreement may target: its family and the fields a party may see.

A kind is the snake-case name of an event contract (``energy_reading``, ``bike_trip``); a
mobility event carries it in its ``kind`` field, the two other families have one kind each.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel

from schemas.json_schemas import EVENT_TYPES

EVENT_FAMILIES = {
    "energy": "energy.reading",
    "environment": "environment.reading",
    "mobility": "mobility.event",
}
"""family -> its events' schema name (the ``schema`` field)."""


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _family_of(model: type[BaseModel]) -> str | None:
    default = model.model_fields["schema_name"].default if "schema_name" in model.model_fields else None
    return next((family for family, schema in EVENT_FAMILIES.items() if schema == default), None)


def _json_fields(model: type[BaseModel]) -> frozenset[str]:
    return frozenset(info.alias or name for name, info in model.model_fields.items())


KIND_FAMILY: dict[str, str] = {
    _snake(model.__name__): family for model in EVENT_TYPES if (family := _family_of(model)) is not None
}
KIND_FIELDS: dict[str, frozenset[str]] = {
    _snake(model.__name__): _json_fields(model) for model in EVENT_TYPES if _family_of(model) is not None
}
"""kind -> the JSON keys its events may carry (``schema``, not ``schema_name``)."""


def kind_of(family: str, event: dict[str, Any]) -> str:
    """The kind of a validated event of ``family``."""
    if family == "mobility":
        return str(event.get("kind"))
    return f"{family}_reading"
