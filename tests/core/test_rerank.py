"""``RerankRequest`` checks its fields by name; ``RerankResult.ranking`` orders by score."""

from __future__ import annotations

import pytest

from modelport.core import BadRequestError, RerankRequest, RerankResult
from modelport.core.rerank import MAX_RERANK_DOCUMENTS


@pytest.mark.parametrize(
    ("query", "documents", "param"),
    [
        ("", ["a"], "query"),
        ("   ", ["a"], "query"),
        ("q", [], "documents"),
        ("q", ["a", ""], "documents[1]"),
        ("q", ["a", 3], "documents[1]"),
        ("q", ["a"] * (MAX_RERANK_DOCUMENTS + 1), "documents"),
    ],
)
def test_bad_requests_name_the_field(query: str, documents: list[object], param: str) -> None:
    with pytest.raises(BadRequestError) as caught:
        RerankRequest(query, documents)  # type: ignore[arg-type]
    assert caught.value.param == param


def test_a_single_string_is_one_document() -> None:
    assert RerankRequest("q", "only").documents == ("only",)


def test_ranking_is_by_score_with_ties_in_request_order() -> None:
    result = RerankResult([0.1, 0.9, 0.5, 0.9])
    assert result.ranking() == [1, 3, 2, 0]
    assert result.ranking(2) == [1, 3]
    assert result.ranking(0) == []
