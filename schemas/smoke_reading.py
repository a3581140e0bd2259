"""The smoke reading: the smallest event that crosses every real part of the stack.

It proves the plumbing (MQTT -> Kafka -> faust -> InfluxDB); the territory's real event
families get their own modules in this package.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from schemas.envelope import utc_instant


class SmokeReading(BaseModel):
    """One numeric value from one device at one instant."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    device_id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$")
    value: float = Field(allow_inf_nan=False)
    time: AwareDatetime

    @field_validator("time")
    @classmethod
    def _to_utc(cls, value: datetime) -> datetime:
        return utc_instant(value)
