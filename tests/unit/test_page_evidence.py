"""The operators' page's causal evidence: the current record of each hypothesis and commune."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from operators_view.causal_evidence_rows import current_evidence
from operators_view.flux_queries import causal_evidence
from operators_view.page_snapshot import hypothesis_questions
from reference.loader import DEFAULT_DIR

T0 = datetime(2026, 12, 7, 10, tzinfo=UTC)


def row(
    hypothesis: str, commune: str | None, status: str, hours: int, **figures: object
) -> dict[str, object]:
    return {
        "hypothesis": hypothesis,
        "commune": commune,
        "status": status,
        "time": T0 + timedelta(hours=hours),
        **figures,
    }


def test_the_newest_record_of_each_hypothesis_and_commune_is_shown_evidence_first() -> None:
    rows = [
        row("cold-drives-heating", "17300", "evidence", 0, lag_hours=2, sign=1, p_value=1e-6, n=600),
        row("cold-drives-heating", "17300", "no_evidence", 1, lag_hours=1, sign=-1, p_value=0.4, n=610),
        row("traffic-drives-no2", "17300", "evidence", 1, lag_hours=3, sign=1, p_value=2e-5, n=640),
        row("traffic-drives-no2", None, "insufficient_data", 1, detail="too few complete hours"),
    ]
    shown = current_evidence(
        rows,
        {"traffic-drives-no2": {"en": "More vehicles, more NO2?", "fr": "Plus de véhicules, plus de NO2 ?"}},
        {"17300": "La Rochelle"},
    )
    assert [(r["hypothesis"], r["place"], r["status"]) for r in shown] == [
        ("traffic-drives-no2", "La Rochelle", "evidence"),
        ("cold-drives-heating", "La Rochelle", "no_evidence"),  # the later run's result replaces the earlier
        ("traffic-drives-no2", "", "insufficient_data"),  # the territory
    ]
    assert shown[0]["questions"]["fr"] == "Plus de véhicules, plus de NO2 ?" and shown[0]["lag_hours"] == 3
    assert shown[1]["questions"] == {}  # a hypothesis the file no longer has: shown by its name
    assert shown[0]["computed_for"] == (T0 + timedelta(hours=1)).isoformat()
    assert shown[2]["detail"] == "too few complete hours" and shown[2]["p_value"] is None


def test_the_query_reads_the_evidence_bucket_since_the_given_time() -> None:
    query = causal_evidence("causal_evidence", T0)
    assert 'from(bucket: "causal_evidence")' in query and "range(start: 2026-12-07T10:00:00Z)" in query
    assert 'r._measurement == "causal_evidence"' in query and "pivot(" in query


def test_the_questions_come_from_the_shipped_hypotheses_and_a_broken_file_shows_none(tmp_path: Path) -> None:
    questions = hypothesis_questions(DEFAULT_DIR)
    assert questions["cold-drives-heating"]["en"].startswith("Does a colder hour")
    assert questions["cold-drives-heating"]["fr"].startswith("Une heure plus froide")
    (tmp_path / "hypotheses.toml").write_text("[[hypothesis]]\nname = 1\n")
    assert hypothesis_questions(tmp_path) == {}
    assert hypothesis_questions(tmp_path / "absent") == {}


def test_every_shipped_question_is_asked_in_both_of_the_pages_languages() -> None:
    questions = hypothesis_questions(DEFAULT_DIR)
    assert questions, "no hypothesis shipped"
    assert all(q["en"] and q["fr"] and q["fr"] != q["en"] for q in questions.values()), questions
