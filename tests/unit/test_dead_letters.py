"""Dead-letter building: memoised problems and the record's fast construction change nothing.

``problems_from`` memoises the problems it builds and ``dead_letter`` calls DeadLetter's
validator directly (bench/validation_throughput.py); a record must still be exactly what a
fresh derivation and ``DeadLetter(...)`` would give.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError, model_validator

from schemas import dead_letters
from schemas.dead_letter import DeadLetter, FieldProblem, Origin
from schemas.dead_letters import dead_letter, problems_from
from schemas.families import FAMILIES
from schemas.field_error import FieldError
from tests.unit.test_validation_properties import budget, encode, mutations, valid_payloads

ORIGIN = Origin(transport="kafka", topic="zc.raw.energy", partition=2, offset=41, index=3)


def schema_error(family: str, raw: bytes) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        FAMILIES[family].validator.validate_json(raw)
    return caught.value


def as_tuples(problems: list[FieldProblem]) -> list[tuple[str, str, str]]:
    return [(p.path, p.type, p.message) for p in problems]


@budget(200)
@given(st.data())
def test_memoised_problems_are_those_a_fresh_derivation_gives(data: st.DataObject) -> None:
    generated = data.draw(valid_payloads, label="valid")
    family = generated.family
    raw = encode(data.draw(mutations(generated), label="mutation").payload)
    try:
        FAMILIES[family].validator.validate_json(raw)
    except ValidationError as exc:
        warm = as_tuples(problems_from(exc))
        dead_letters._MEMO.clear()
        dead_letters._LISTS.clear()
        assert as_tuples(problems_from(exc)) == warm  # cold
        assert as_tuples(problems_from(exc)) == warm  # memoised


class Reading(BaseModel):
    quantity: float
    unit: str

    @model_validator(mode="after")
    def check(self) -> Reading:
        if self.unit == "field-error":
            raise FieldError("quantity", "is wrong")
        if self.unit == "value-error":
            raise ValueError("quantity: is wrong")  # the same text, but no field named
        return self


def test_a_plain_value_error_is_not_taken_for_a_field_error_with_the_same_text() -> None:
    def problems(unit: str) -> list[tuple[str, str, str]]:
        with pytest.raises(ValidationError) as caught:
            Reading(quantity=1.0, unit=unit)
        return as_tuples(problems_from(caught.value))

    for _ in range(2):  # cold, then memoised
        assert problems("field-error") == [("quantity", "value_error", "is wrong")]
        assert problems("value-error") == [("", "value_error", "Value error, quantity: is wrong")]


def test_a_producer_s_long_unknown_key_is_reported_whole_but_not_memoised() -> None:
    dead_letters._MEMO.clear()
    dead_letters._LISTS.clear()
    key = "k" * 10_000
    payload = {"event_id": "e1", "producer_id": "enedis", key: 1}
    problems = problems_from(schema_error("energy", json.dumps(payload).encode()))
    assert (key, "extra_forbidden", "Extra inputs are not permitted") in as_tuples(problems)
    assert all(len(str(part)) < 10_000 for loc, *_ in dead_letters._MEMO for part in loc)
    assert all(len(errors_json) <= dead_letters._LISTS_CHARS for errors_json in dead_letters._LISTS)


def test_the_memo_stays_bounded() -> None:
    for n in range(dead_letters._MEMO_ENTRIES + 10):
        problems_from(schema_error("energy", json.dumps({f"unknown_{n}": 1}).encode()))
        assert len(dead_letters._MEMO) <= dead_letters._MEMO_ENTRIES
        assert len(dead_letters._LISTS) <= dead_letters._LISTS_ENTRIES


@pytest.mark.parametrize("raw", [b'{"producer_id": "enedis", "quantity": -1}', b'{"producer_id":"caf\xe9"}'])
@pytest.mark.parametrize(
    "now",
    [datetime(2026, 12, 1, 12, tzinfo=UTC), datetime(2026, 12, 1, 13, tzinfo=timezone(timedelta(hours=1)))],
)
def test_a_dead_letter_is_the_record_its_model_would_build(raw: bytes, now: datetime) -> None:
    problems = [FieldProblem(path="quantity", type="greater_than_equal", message="too small")]
    letter = dead_letter(
        family="energy", stage="validation", raw=raw, problems=problems, origin=ORIGIN, now=now
    )
    expected = DeadLetter(
        family="energy", stage="validation", reason="quantity: too small", errors=problems,
        payload=letter.payload, payload_encoding=letter.payload_encoding, payload_size=len(raw),
        producer_id=letter.producer_id, origin=ORIGIN, failed_at=now,
    )  # fmt: skip
    assert type(letter) is DeadLetter
    assert letter.model_dump_json(by_alias=True) == expected.model_dump_json(by_alias=True)
    assert letter.model_fields_set == expected.model_fields_set
    assert letter.failed_at.utcoffset() == timedelta(0)
    assert letter.original_payload() == raw
