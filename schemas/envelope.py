"""The envelope every event carries: identity, provenance, contract version and time.

``event_id`` is the idempotency key: a producer that resends an event (after a timeout,
a reconnection...) reuses it, and the pipeline counts and drops the second copy.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Self

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from schemas.field_error import FieldError

Identifier = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:\-]*$")]
InseeCode = Annotated[str, Field(pattern=r"^(2[AB]|\d{2})\d{3}$", description="INSEE commune code")]


def utc_instant(value: datetime) -> datetime:
    """``value`` in UTC. An instant UTC cannot hold (0001-01-01T00:00+01:00) raises ValueError,
    which validators report as a problem of the field; ``astimezone``'s OverflowError would
    escape pydantic and stop the stage that met it."""
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"{value.isoformat()} is out of the datetime range once converted to UTC") from None


UtcDatetime = Annotated[AwareDatetime, AfterValidator(utc_instant)]
"""A timestamp that must carry its offset (naive times are refused) and is stored in UTC."""

EventDatetime = AwareDatetime
"""A timestamp of an event family: offset required; the envelope's validator turns it to UTC.

Events are validated by the hundred thousand per second: one Python validator per event,
doing the UTC normalisation and the family's cross-field checks together, costs half as
much as one validator per field and per check (bench/validation_throughput.py).
"""


class Envelope(BaseModel):
    """Fields common to every event family (schema name and version are set per family)."""

    # strict: JSON types must match the published schema (no "1.2" or true for a number).
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    event_id: Identifier = Field(description="idempotency key, unique per producer and event")
    producer_id: Identifier = Field(description="who published: device maker, operator, lab...")
    schema_version: int = Field(default=1, ge=1, description="major version of the family's contract")
    event_time: EventDatetime = Field(description="when the reading was taken (end of its interval)")
    ingestion_time: EventDatetime | None = Field(
        default=None, description="set by the platform when the event is accepted"
    )

    # Names of this model's datetime fields, computed once per class (see below).
    _datetime_fields: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        cls._datetime_fields = tuple(
            name for name, info in cls.model_fields.items() if "datetime" in str(info.annotation).lower()
        )

    @model_validator(mode="after")
    def _normalise_and_check(self) -> Self:
        values = self.__dict__
        for name in self._datetime_fields:
            value = values[name]
            # A zero offset already is UTC and stays as parsed: converting it anyway was a sixth of
            # the validation of an event (bench/validation_throughput.py).
            if value is not None and value.utcoffset():
                try:
                    values[name] = utc_instant(value)
                except ValueError as exc:
                    raise FieldError(name, str(exc)) from None
        self.check()
        return self

    def check(self) -> None:
        """Cross-field rules of the family; raise FieldError naming the field at fault."""
