"""``/v1/rerank`` and ``/v1/score`` on the shared endpoint base.

Both check their body here (naming the wire's own fields), build core ``RerankRequest``
objects and hand them to the model's reranker: a cross-encoder, an embedder (cosine) or a
local chat model (its "yes" probability). The pairs of a request are scored in one call where
they share a query; pairwise ``/score`` lists are scored concurrently, so a batching reranker
merges them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from fastapi.responses import Response

from modelport.core.errors import BadRequestError
from modelport.core.request import token_upper_bound
from modelport.core.rerank import RerankRequest, RerankResult, check_documents
from modelport.server.endpoints.base import Endpoint, count_text_tokens
from modelport.server.endpoints.rerank import wire

__all__ = ["RerankEndpoint", "ScoreEndpoint"]


def _texts(values: Sequence[Any], param: str) -> list[str]:
    """Document texts from strings or ``{"text": ...}`` objects (Cohere's and Jina's), checked by name."""
    texts = [value.get("text") if isinstance(value, dict) else value for value in values]
    for i, (value, text) in enumerate(zip(values, texts, strict=True)):
        if isinstance(value, dict) and not isinstance(text, str):
            raise BadRequestError('must be a string or an object with a "text" string', param=f"{param}[{i}]")
    return list(check_documents(texts, param=param))


async def _score(endpoint: Endpoint, requests: list[RerankRequest], param: str) -> list[RerankResult]:
    """Checks the request's size against ``server.max_embedding_tokens``, then scores on one slot."""
    worker = await endpoint.reranker(endpoint.model)
    pairs = sum(len(r.documents) for r in requests)
    endpoint.record.inputs = pairs
    # Each pair reads its query once more; the cap holds for everything the model reads.
    texts = [t for r in requests for t in (r.query,) * len(r.documents) + tuple(r.documents)]
    limit = endpoint.state.settings.max_embedding_tokens
    if sum(token_upper_bound(t) for t in texts) > limit:
        tokens = await asyncio.to_thread(count_text_tokens, worker, texts)
        if tokens > limit:
            raise BadRequestError(
                f"holds about {tokens} tokens over its {pairs} pairs; one request takes {limit} at most "
                "(server.max_embedding_tokens)",
                param=param,
            )
    slot = await endpoint.slot(worker)
    try:
        results = list(await asyncio.gather(*(worker.ascore(r) for r in requests)))
    finally:
        slot.release()
    endpoint.record.prompt_tokens = sum(r.prompt_tokens for r in results)
    return results


class RerankEndpoint(Endpoint, name="rerank", id_prefix="rerank"):
    """Scores the documents against the query and answers with the best ``top_n``, best first."""

    async def create(self, body: wire.RerankRequest) -> Response:
        """The results, sorted by score, with the documents' texts unless asked not to."""
        if body.top_n is not None and body.top_n < 1:
            raise BadRequestError(f"must be a positive integer, got {body.top_n}", param="top_n")
        documents = _texts(body.documents, "documents")
        (result,) = await _score(self, [RerankRequest(body.query, documents)], "documents")
        results = []
        for i in result.ranking(body.top_n):
            item = wire.RerankResultItem(index=i, relevance_score=result.scores[i])
            if body.return_documents:
                item.document = wire.RerankDocument(text=documents[i])
            results.append(item)
        usage = wire.RerankUsage(prompt_tokens=result.prompt_tokens, total_tokens=result.prompt_tokens)
        return self.json(wire.RerankResponse(id=self.response_id, model=self.model, usage=usage, results=results))


class ScoreEndpoint(Endpoint, name="score", id_prefix="score"):
    """vLLM's ``/score``: one text against many, or two lists pair by pair."""

    async def create(self, body: wire.ScoreRequest) -> Response:
        """One score per pair, in the request's order."""
        firsts = [body.text_1] if isinstance(body.text_1, str) else _texts(body.text_1, "text_1")
        seconds = [body.text_2] if isinstance(body.text_2, str) else _texts(body.text_2, "text_2")
        if isinstance(body.text_1, str) and not body.text_1:
            raise BadRequestError("must not be an empty string", param="text_1")
        if isinstance(body.text_2, str) and not body.text_2:
            raise BadRequestError("must not be an empty string", param="text_2")
        if len(firsts) == 1:
            requests = [RerankRequest(firsts[0], seconds)]
        elif len(firsts) == len(seconds):
            requests = [RerankRequest(a, [b]) for a, b in zip(firsts, seconds, strict=True)]
        else:
            raise BadRequestError(
                f"text_1 holds {len(firsts)} texts and text_2 {len(seconds)}: send one text_1, or lists of one length",
                param="text_2",
            )
        results = await _score(self, requests, "text_2")
        scores = [s for r in results for s in r.scores]
        tokens = self.record.prompt_tokens
        return self.json(
            wire.ScoreResponse(
                id=self.response_id,
                created=self.created,
                model=self.model,
                data=[wire.ScoreData(index=i, score=s) for i, s in enumerate(scores)],
                usage=wire.ScoreUsage(prompt_tokens=tokens, total_tokens=tokens),
            )
        )
