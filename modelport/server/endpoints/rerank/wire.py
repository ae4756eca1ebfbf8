"""The rerank and score bodies: Jina's and Cohere's ``/rerank``, vLLM's ``/score``."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from modelport.server.protocol import WireResponse

__all__ = [
    "RerankDocument",
    "RerankRequest",
    "RerankResponse",
    "RerankResultItem",
    "RerankUsage",
    "ScoreData",
    "ScoreRequest",
    "ScoreResponse",
    "ScoreUsage",
]


class RerankRequest(BaseModel):
    """``POST /v1/rerank``: documents as strings or ``{"text": ...}`` objects."""

    # Fields other servers take (Cohere's max_chunks_per_doc, Jina's truncation) are kept, ignored.
    model_config = ConfigDict(extra="allow")

    model: str
    query: str
    documents: list[str | dict[str, Any]]
    top_n: int | None = Field(default=None, description="return the best this many (all when omitted)")
    return_documents: bool = Field(default=True, description="include each document's text in its result")


class RerankDocument(WireResponse):
    """A result's document, as Jina and Cohere return it."""

    text: str


class RerankResultItem(WireResponse):
    """One document's score; ``index`` is its place in the request."""

    index: int
    relevance_score: float
    document: RerankDocument | None = None


class RerankUsage(WireResponse):
    """Tokens the scoring read."""

    prompt_tokens: int
    total_tokens: int


class RerankResponse(WireResponse):
    """The results, most relevant first."""

    id: str
    model: str
    usage: RerankUsage
    results: list[RerankResultItem]


class ScoreRequest(BaseModel):
    """``POST /v1/score``: ``text_1`` against each of ``text_2``, or pairwise lists of one length."""

    model_config = ConfigDict(extra="allow")

    model: str
    text_1: str | list[str]
    text_2: str | list[str]


class ScoreData(WireResponse):
    """One pair's score, in the request's order."""

    index: int
    object: Literal["score"] = "score"
    score: float


class ScoreUsage(WireResponse):
    """Tokens the scoring read (vLLM reports no completion tokens, as 0)."""

    prompt_tokens: int
    total_tokens: int
    completion_tokens: int = 0


class ScoreResponse(WireResponse):
    """vLLM's score answer."""

    id: str
    object: Literal["list"] = "list"
    created: int
    model: str
    data: list[ScoreData]
    usage: ScoreUsage
