"""The rerank wire format that vLLM, llama.cpp's server, Jina, Cohere and modelport share.

A request is ``{model, query, documents, top_n, return_documents}``; the answer lists
``results`` of ``{index, relevance_score}``, sorted by score, with the tokens read in
``usage.total_tokens`` (``meta.billed_units`` on Cohere, which reports no tokens).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from modelport.core.errors import UpstreamUnavailableError
from modelport.core.rerank import RerankRequest

__all__ = ["decode_rerank", "rerank_body", "rerank_results"]


def rerank_body(request: RerankRequest, *, model: str) -> dict[str, Any]:
    """Asks for every document's score (``top_n`` is all of them) and no document texts back."""
    documents = list(request.documents)
    return {
        "model": model,
        "query": request.query,
        "documents": documents,
        "top_n": len(documents),
        "return_documents": False,
    }


def rerank_results(results: Any, expected: int, *, what: str) -> list[float]:
    """Scores in document order from a ``results`` list of ``{index, relevance_score}``.

    Raises:
        UpstreamUnavailableError: If the list is missing, malformed or leaves a document out.
    """
    if not isinstance(results, list):
        raise UpstreamUnavailableError(f"the {what} rerank answer has no results list")
    scores: dict[int, float] = {}
    for item in results:
        if not isinstance(item, Mapping) or "index" not in item or "relevance_score" not in item:
            raise UpstreamUnavailableError(f"the {what} rerank answer holds a result without index and score")
        scores[int(item["index"])] = float(item["relevance_score"])
    if sorted(scores) != list(range(expected)):
        raise UpstreamUnavailableError(f"asked to score {expected} documents, got scores for {len(scores)}")
    return [scores[i] for i in range(expected)]


def decode_rerank(data: Any, expected: int) -> tuple[list[float], int]:
    """Reads a rerank answer: scores in document order and the tokens it reports (0 if none)."""
    if not isinstance(data, Mapping):
        raise UpstreamUnavailableError("the rerank answer is not a JSON object")
    scores = rerank_results(data.get("results"), expected, what="upstream")
    usage = data.get("usage")
    tokens = 0
    if isinstance(usage, Mapping):
        tokens = int(usage.get("total_tokens") or usage.get("prompt_tokens") or 0)
    return scores, tokens
