"""The rerank request and result: how relevant each document is to one query."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from modelport.core.errors import BadRequestError

__all__ = ["MAX_RERANK_DOCUMENTS", "RerankRequest", "RerankResult"]

MAX_RERANK_DOCUMENTS = 2048
"""Documents one rerank request may hold (as embedding inputs are capped)."""


@dataclass(frozen=True, slots=True)
class RerankRequest:
    """A query and the documents to score against it.

    Attributes:
        query: What the documents should answer.
        documents: The candidates, scored in this order.
    """

    query: str
    documents: Sequence[str]

    def __post_init__(self) -> None:
        if not isinstance(self.query, str) or not self.query.strip():
            raise BadRequestError("must be a non-empty string", param="query")
        documents = (self.documents,) if isinstance(self.documents, str) else tuple(self.documents)
        if not documents:
            raise BadRequestError("must not be empty", param="documents")
        if len(documents) > MAX_RERANK_DOCUMENTS:
            raise BadRequestError(
                f"holds {len(documents)} documents; one request takes {MAX_RERANK_DOCUMENTS} at most",
                param="documents",
            )
        for i, document in enumerate(documents):
            if not isinstance(document, str):
                raise BadRequestError("must be a string", param=f"documents[{i}]")
            if not document:
                raise BadRequestError("must not be an empty string", param=f"documents[{i}]")
        object.__setattr__(self, "documents", documents)


@dataclass(frozen=True, slots=True)
class RerankResult:
    """One score per document, in the request's order (higher is more relevant).

    Attributes:
        scores: The scores; their scale is the model's (a probability, a cosine, a logit).
        prompt_tokens: Tokens the scoring read, all pairs together.
        model: The model that scored, where the worker knows it.
    """

    scores: list[float]
    prompt_tokens: int = 0
    model: str = ""

    def ranking(self, top_n: int | None = None) -> list[int]:
        """Document indexes, most relevant first (ties keep the request's order); ``top_n`` at most."""
        order = sorted(range(len(self.scores)), key=lambda i: -self.scores[i])
        return order if top_n is None else order[: max(top_n, 0)]
