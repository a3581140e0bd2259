"""The names a family's contract gives its schema and its device field, for payload builders."""

from __future__ import annotations

from schemas.families import FAMILIES

SCHEMA_NAME = {"energy": "energy.reading", "environment": "environment.reading", "mobility": "mobility.event"}
DEVICE_FIELD = {name: family.device_field for name, family in FAMILIES.items()}
