"""A document refused before a uid can be read from it must still be named (by its file, or as having no
uid), so that an operator can find which one it is."""

from __future__ import annotations

from pathlib import Path

import pytest

from sharing.agreements import AgreementError, load_agreement_file
from tests.unit.agreement_fixtures import INDICATOR_NAMES, LRU, _changed, _refusal, _sample, removing


def test_a_document_without_uid_is_named_so() -> None:
    error = _refusal(_changed(LRU, removing("uid")))
    assert (error.agreement, error.term) == ("(no uid)", "uid")


def test_a_document_that_is_not_an_object_is_refused() -> None:
    error = _refusal([_sample(LRU)])
    assert (error.agreement, error.term) == ("(unnamed)", "document")


@pytest.mark.parametrize(("content", "problem"), [(b"{", "is not JSON"), (b"\xff\xfe{}", "cannot be read")])
def test_a_file_that_is_not_json_is_named_by_its_file_name(
    tmp_path: Path, content: bytes, problem: str
) -> None:
    path = tmp_path / "broken.jsonld"
    path.write_bytes(content)
    with pytest.raises(AgreementError) as caught:
        load_agreement_file(path, INDICATOR_NAMES)
    assert (caught.value.agreement, caught.value.term) == ("broken.jsonld", "file")
    assert problem in caught.value.problem


def test_a_missing_file_is_named_by_its_file_name(tmp_path: Path) -> None:
    with pytest.raises(AgreementError) as caught:
        load_agreement_file(tmp_path / "absent.jsonld", INDICATOR_NAMES)
    assert (caught.value.agreement, caught.value.term) == ("absent.jsonld", "file")
