"""Causal evidence: what the analysis (`zerocarbon analyse`) found for one hypothesis in one
commune over a rolling window of hourly indicators. Evidence, not proof: a Granger test says
that the cause's past helps predict the effect beyond the effect's own past and the confounders
(docs/causal-evidence.md says what it does not prove).

Keyed by (hypothesis, commune): a later record replaces the earlier one on the compacted topic
``zc.causal-evidence``; the InfluxDB points keep the history, one per run, at the window's end.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.envelope import UtcDatetime

EvidenceStatus = Literal["evidence", "no_evidence", "insufficient_data"]


class CausalEvidence(BaseModel):
    """One hypothesis tested in one commune (``commune`` empty: the territory as a whole)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    schema_name: Literal["causal.evidence"] = Field(default="causal.evidence", alias="schema")
    schema_version: int = 1
    hypothesis: str = Field(min_length=1, description="its name in the hypotheses file")
    question: str = Field(description="the question the hypothesis asks, in words")
    cause: str = Field(description="the cause series: indicator{dimension=value,...}")
    effect: str = Field(description="the effect series: indicator{dimension=value,...}")
    confounders: list[str] = Field(default_factory=list, description="the series controlled for")
    commune: str = Field(description="INSEE code; empty for the territory's series")
    window_start: UtcDatetime
    window_end: UtcDatetime
    status: EvidenceStatus = Field(
        description="evidence: discovered at the false discovery rate q across the run's tests; "
        "no_evidence: tested, not discovered; insufficient_data: too few complete hours to test"
    )
    detail: str = Field(default="", description="why the data were insufficient, when they were")
    lag_hours: int | None = Field(default=None, ge=1, description="the lag the test chose (BIC)")
    effect_size: float | None = Field(
        default=None, allow_inf_nan=False, description="sum of the cause's coefficients, after preparation"
    )
    sign: int | None = Field(default=None, ge=-1, le=1, description="the direction of the effect")
    p_value: float | None = Field(default=None, ge=0, le=1, description="the Granger F-test's")
    q: float = Field(gt=0, lt=1, description="the false discovery rate Benjamini-Hochberg was run at")
    tests_in_run: int = Field(
        ge=0, description="how many tests the false discovery rate was controlled across"
    )
    n: int = Field(ge=0, description="complete hourly rows the test used")
    ccf_lag_hours: int | None = Field(
        default=None, ge=1, description="the prewhitened cross-correlation's lag"
    )
    ccf: float | None = Field(default=None, ge=-1, le=1, allow_inf_nan=False)
    method_version: str = Field(description="the analysis method's version (analysis/evidence.py)")
    computed_at: UtcDatetime

    def key(self) -> bytes:
        """The record's key on the compacted topic."""
        return f"{self.hypothesis}|{self.commune}".encode()
