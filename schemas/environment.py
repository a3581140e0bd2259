"""Environmental sensor readings: outdoor air quality, weather, indoor CO2, noise.

Field names follow FIWARE's AirQualityObserved where the concept is the same (see
docs/contracts.md for the mapping): one reading carries one quantity, as sensors publish.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.envelope import Envelope, Identifier, InseeCode
from schemas.field_error import FieldError


class EnvQuantity(StrEnum):
    NO2 = "no2"
    PM10 = "pm10"
    PM25 = "pm25"
    O3 = "o3"
    TEMPERATURE = "temperature"
    RELATIVE_HUMIDITY = "relative_humidity"
    CO2_INDOOR = "co2_indoor"
    NOISE = "noise"


UNIT_OF: dict[EnvQuantity, str] = {
    EnvQuantity.NO2: "ug/m3",
    EnvQuantity.PM10: "ug/m3",
    EnvQuantity.PM25: "ug/m3",
    EnvQuantity.O3: "ug/m3",
    EnvQuantity.TEMPERATURE: "Cel",
    EnvQuantity.RELATIVE_HUMIDITY: "%RH",
    EnvQuantity.CO2_INDOOR: "ppm",
    EnvQuantity.NOISE: "dBA",
}
"""The one unit accepted per quantity (SenML-style symbols, ASCII)."""


class Location(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    lat: float = Field(ge=-90, le=90, allow_inf_nan=False)
    lon: float = Field(ge=-180, le=180, allow_inf_nan=False)


class EnvironmentReading(Envelope):
    """One value of one quantity from one sensor."""

    model_config = Envelope.model_config | {"populate_by_name": True}

    schema_name: Literal["environment.reading"] = Field(default="environment.reading", alias="schema")
    sensor_id: Identifier
    commune: InseeCode
    location: Location | None = None
    quantity: EnvQuantity
    value: float = Field(allow_inf_nan=False)
    unit: str

    def check(self) -> None:
        super().check()
        expected = UNIT_OF[self.quantity]
        if self.unit != expected:
            raise FieldError("unit", f"{self.quantity.value} is reported in {expected!r}, not {self.unit!r}")
