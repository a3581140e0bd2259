"""The page's causal evidence: the current record of each hypothesis and commune, in words.

Evidence, not proof (docs/causal-evidence.md): the page shows each result with its p-value, its
lag and its direction, and the caveat beside the table says what a Granger test does not show.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

Row = dict[str, Any]
FIGURES = (
    "lag_hours",
    "sign",
    "p_value",
    "effect_size",
    "n",
    "q",
    "tests_in_run",
    "method_version",
    "detail",
)
STATUS_ORDER = {"evidence": 0, "no_evidence": 1, "insufficient_data": 2}


def current_evidence(
    rows: Iterable[Row], questions: Mapping[str, Mapping[str, str]], commune_names: Mapping[str, str]
) -> list[Row]:
    """The newest row of each (hypothesis, commune), evidence first, then by hypothesis."""
    newest: dict[tuple[str, str], Row] = {}
    for row in rows:
        key = (str(row.get("hypothesis", "")), str(row.get("commune") or ""))
        if key not in newest or row["time"] > newest[key]["time"]:
            newest[key] = row
    out = []
    for (hypothesis, commune), row in newest.items():
        out.append(
            {
                "hypothesis": hypothesis,
                "questions": dict(questions.get(hypothesis, {})),  # language -> question
                "commune": commune,
                "place": commune_names.get(commune, commune) if commune else "",
                "status": row.get("status"),
                "computed_for": row["time"].isoformat(),
                **{name: row.get(name) for name in FIGURES},
            }
        )
    return sorted(out, key=lambda r: (STATUS_ORDER.get(r["status"], 3), r["hypothesis"], r["place"]))
