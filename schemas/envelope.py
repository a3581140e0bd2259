"""The envelope every event carries: identity, provenance, contract version and time.

``event_id`` is the idempotency key: a producer that resends an event (after a timeout,
a reconnection...) reuses it, and the pipeline counts and drops the second copy.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

Identifier = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:\-]*$")]
InseeCode = Annotated[str, Field(pattern=r"^(2[AB]|\d{2})\d{3}$", description="INSEE commune code")]


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


UtcDatetime = Annotated[AwareDatetime, AfterValidator(_utc)]
"""A timestamp that must carry its offset (naive times are refused) and is stored in UTC."""


class Envelope(BaseModel):
    """Fields common to every event family (schema name and version are set per family)."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=False)

    event_id: Identifier = Field(description="idempotency key, unique per producer and event")
    producer_id: Identifier = Field(description="who published: device maker, operator, lab...")
    schema_version: int = Field(default=1, ge=1, description="major version of the family's contract")
    event_time: UtcDatetime = Field(description="when the reading was taken (end of its interval)")
    ingestion_time: UtcDatetime | None = Field(
        default=None, description="set by the platform when the event is accepted"
    )
