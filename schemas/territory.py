"""Vocabularies shared by the event families: sectors of activity and energy carriers."""

from __future__ import annotations

from enum import StrEnum


class Sector(StrEnum):
    """Sectors of the territorial inventory (the ones the programme reports on)."""

    RESIDENTIAL = "residential"
    TERTIARY = "tertiary"
    INDUSTRY = "industry"
    PUBLIC = "public"
    AGRICULTURE = "agriculture"
    TRANSPORT = "transport"


class Carrier(StrEnum):
    """Energy carriers a meter can measure; solar_pv is local production."""

    ELECTRICITY = "electricity"
    NATURAL_GAS = "natural_gas"
    HEAT_NETWORK = "heat_network"
    HEATING_OIL = "heating_oil"
    WOOD = "wood"
    SOLAR_PV = "solar_pv"
