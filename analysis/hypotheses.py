"""Causal hypotheses as configuration (reference/data/hypotheses.toml): what the analysis
tests, read strictly. A file with one wrong term is refused whole, the error naming the
hypothesis and the term: a hypothesis half read would test something nobody asked.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PER = ("commune", "territory")
"""How a hypothesis pairs series: each commune's cause with the same commune's effect, or the
territory's sums."""


class HypothesisError(ValueError):
    """A hypotheses file the analysis refuses: which hypothesis, which term, what to write."""


@dataclass(frozen=True)
class Selector:
    """The series of one indicator whose dimensions include ``where``."""

    indicator: str
    where: tuple[tuple[str, str], ...] = ()

    def matches(self, indicator: str, dimensions: Mapping[str, str]) -> bool:
        return indicator == self.indicator and all(dimensions.get(k) == v for k, v in self.where)


@dataclass(frozen=True)
class Hypothesis:
    name: str
    question: str  # in English, as the published evidence carries it
    cause: Selector
    effect: Selector
    per: str
    max_lag_hours: int
    max_gap_hours: int
    confounders: tuple[Selector, ...] = field(default=())
    question_fr: str = ""  # the operators' page's French; empty: the English is shown

    def questions(self) -> dict[str, str]:
        """The question in each language of the operators' page (English where none is given)."""
        return {"en": self.question, "fr": self.question_fr or self.question}


_KEYS = {
    "name", "question", "question_fr", "cause", "effect", "per",
    "max_lag_hours", "max_gap_hours", "confounders",
}  # fmt: skip


def _selector(raw: Any, where: str, indicators: frozenset[str]) -> Selector:
    if not isinstance(raw, dict) or set(raw) - {"indicator", "where"} or "indicator" not in raw:
        raise HypothesisError(f'{where}: write {{ indicator = "...", where = {{ dimension = "value" }} }}')
    if raw["indicator"] not in indicators:
        raise HypothesisError(f"{where}: {raw['indicator']!r} is not an indicator the platform publishes")
    filters = raw.get("where", {})
    if not isinstance(filters, dict) or not all(isinstance(v, str) for v in filters.values()):
        raise HypothesisError(f'{where}.where: dimension = "value" pairs, each value a string')
    return Selector(raw["indicator"], tuple(sorted(filters.items())))


def _hours(raw: dict[str, Any], key: str, where: str, low: int, high: int) -> int:
    value = raw.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise HypothesisError(f"{where}.{key}: a whole number of hours from {low} to {high}, not {value!r}")
    return value


def parse_hypotheses(doc: Mapping[str, Any], indicators: frozenset[str]) -> list[Hypothesis]:
    """The hypotheses of a parsed file; ``indicators``: the names a selector may use."""
    entries = doc.get("hypothesis")
    if not isinstance(entries, list) or not entries:
        raise HypothesisError("no [[hypothesis]] table: the file must declare at least one")
    hypotheses: list[Hypothesis] = []
    for n, raw in enumerate(entries, 1):
        name = raw.get("name") if isinstance(raw, dict) else None
        where = f"hypothesis {name or n}"
        if not isinstance(raw, dict) or not isinstance(name, str) or not name:
            raise HypothesisError(f"{where}: a table with a name")
        if unknown := set(raw) - _KEYS:
            raise HypothesisError(f"{where}: unknown terms {sorted(unknown)} (known: {sorted(_KEYS)})")
        if name in {h.name for h in hypotheses}:
            raise HypothesisError(f"{where}: a second hypothesis with this name")
        per = raw.get("per", "commune")
        if per not in PER:
            raise HypothesisError(f"{where}.per: one of {list(PER)}, not {per!r}")
        confounders = raw.get("confounders", [])
        if not isinstance(confounders, list):
            raise HypothesisError(f"{where}.confounders: a list of {{ indicator = ..., where = ... }}")
        hypotheses.append(
            Hypothesis(
                name=name,
                question=str(raw.get("question", "")),
                question_fr=str(raw.get("question_fr", "")),
                cause=_selector(raw.get("cause"), f"{where}.cause", indicators),
                effect=_selector(raw.get("effect"), f"{where}.effect", indicators),
                per=per,
                max_lag_hours=_hours(raw, "max_lag_hours", where, 1, 48),
                max_gap_hours=_hours(raw, "max_gap_hours", where, 0, 24),
                confounders=tuple(
                    _selector(c, f"{where}.confounders[{i}]", indicators) for i, c in enumerate(confounders)
                ),
            )
        )
    return hypotheses


def load_hypotheses(path: Path, indicators: frozenset[str]) -> list[Hypothesis]:
    """The hypotheses of ``path``: HypothesisError, naming the file, when one term is wrong."""
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
        return parse_hypotheses(doc, indicators)
    except tomllib.TOMLDecodeError as error:
        raise HypothesisError(f"{path}: not TOML: {error}") from None
    except HypothesisError as error:
        raise HypothesisError(f"{path}: {error}") from None
