"""Dead-letter records: an event the platform could not accept, kept whole with every reason."""

from __future__ import annotations

import base64
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.envelope import UtcDatetime


class Origin(BaseModel):
    """Where the payload came from: an MQTT topic, a Kafka topic/partition/offset, or the HTTP
    address a pull collector read it from (``topic`` holds the URL).

    For a reading forwarded by the bridge, ``topic`` is its MQTT topic and partition,
    offset and ``index`` locate it in the Kafka batch record that carried it.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    transport: Literal["mqtt", "kafka", "http"]
    topic: str
    partition: int | None = None
    offset: int | None = None
    key: str | None = None
    index: int | None = Field(default=None, description="position in its batch record")


class FieldProblem(BaseModel):
    """One error, with the path of the field it concerns (``""`` for the whole payload)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str
    type: str
    message: str


class DeadLetter(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    schema_name: Literal["deadletter.record"] = Field(default="deadletter.record", alias="schema")
    schema_version: int = 1
    family: str = Field(description="event family the payload was published as (raw topic)")
    stage: str = Field(description="pipeline stage that refused it: validation, enrichment, sink...")
    reason: str = Field(description="the first problem, in one line, for dashboards")
    errors: list[FieldProblem]
    payload: str = Field(description="the original payload, verbatim (base64 if not UTF-8)")
    payload_encoding: Literal["utf-8", "base64"]
    payload_size: int = Field(ge=0, description="size in bytes of the original payload")
    producer_id: str | None = Field(default=None, description="when it could be read from the payload")
    origin: Origin
    failed_at: UtcDatetime

    def original_payload(self) -> bytes:
        """The bytes exactly as they were received."""
        if self.payload_encoding == "base64":
            return base64.b64decode(self.payload)
        return self.payload.encode()
