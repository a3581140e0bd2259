"""A validation error about one named field, raised by cross-field (model) validators.

pydantic reports a model validator's error at the model's location; the dead-letter
record must still say which field is wrong, so the error carries the field's name.
"""

from __future__ import annotations


class FieldError(ValueError):
    """``field`` is invalid for the reason in the message."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
