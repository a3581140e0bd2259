"""Whether an aggregate cell may be published, or goes out as ``secret``.

The rules (docs/sharing.md, reference/domain-facts.md section 3) need, per cell, the number
of distinct delivery points and the share of the largest one: residential electricity and
gas at least 10 points (Code de l'énergie, D111-53), other sectors at least 3 units with
none above 85 % (INSEE). The window state does not count them yet, so until it does every
cell built from metered energy below the territory's level is secret: nothing is published
that the rules might forbid. The territory's own totals (28 communes, tens of thousands of
delivery points) pass. The other families (mobility, environment, weather) hold no one's
consumption and are published.
"""

from __future__ import annotations

from enum import StrEnum

METERED_ENERGY = frozenset(
    {
        "energy_consumed_kwh",
        "emissions_kgco2e",
        "renewable_production_kwh",
        "renewable_share_ratio",
        "emissions_per_inhabitant_kgco2e",
        "energy_consumed_per_inhabitant_kwh",
    }
)
"""Indicators whose cells sum the readings of energy meters, households' among them."""


class CellStatus(StrEnum):
    PUBLISHED = "published"
    SECRET = "secret"


def cell_status(indicator: str, dimensions: dict[str, str]) -> CellStatus:
    """``secret`` for a cell of metered energy below the territory (its contributors are not
    counted yet); ``published`` otherwise."""
    if indicator in METERED_ENERGY and "commune" in dimensions:
        return CellStatus.SECRET
    return CellStatus.PUBLISHED
