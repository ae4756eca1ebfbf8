"""The rerank request and result: how relevant each document is to one query."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from modelport.core.errors import BadRequestError

__all__ = ["MAX_RERANK_DOCUMENTS", "RerankRequest", "RerankResult", "check_documents"]

MAX_RERANK_DOCUMENTS = 2048
"""Documents one rerank request may hold (as embedding inputs are capped)."""


def check_documents(documents: Sequence[object], *, param: str = "documents") -> tuple[str, ...]:
    """``documents`` checked as rerank candidates: 1 to 2,048 non-empty strings.

    Args:
        documents: The candidates.
        param: The field to name in errors (an API's own, such as ``text_2``).

    Raises:
        BadRequestError: Naming ``param``, or ``param[i]`` for one bad document.
    """
    if not documents:
        raise BadRequestError("must not be empty", param=param)
    if len(documents) > MAX_RERANK_DOCUMENTS:
        raise BadRequestError(
            f"holds {len(documents)} documents; one request takes {MAX_RERANK_DOCUMENTS} at most", param=param
        )
    for i, document in enumerate(documents):
        if not isinstance(document, str):
            raise BadRequestError("must be a string", param=f"{param}[{i}]")
        if not document:
            raise BadRequestError("must not be an empty string", param=f"{param}[{i}]")
    return tuple(documents)  # type: ignore[arg-type]


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
        object.__setattr__(self, "documents", check_documents(documents))


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
