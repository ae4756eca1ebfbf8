"""Where the integrations' rerankers score: a worker, a registry's model, or a server's ``/v1/rerank``.

Shared by the LangChain and LlamaIndex reranker classes so both resolve a reranker the same way.
A ``base_url`` builds the ``openai`` kind with ``rerank: true``: any server that speaks the rerank
shape (modelport, vLLM, llama.cpp, Jina, Cohere) scores the documents.
"""

from __future__ import annotations

from collections.abc import Sequence

from modelport.core.rerank import RerankRequest
from modelport.workers.base import RerankWorker
from modelport.workers.model_registry import ModelRegistry, default_registry

__all__ = ["group_pairs", "resolve_reranker"]


def resolve_reranker(
    *,
    owner: str,
    model: str,
    worker: RerankWorker | None,
    registry: ModelRegistry | None,
    base_url: str | None,
    api_key: str | None,
) -> RerankWorker:
    """The reranker a class was built with: its ``worker``, a server at ``base_url``, or ``model`` loaded here.

    Raises:
        ValueError: If neither a model name nor a worker was given (pydantic reports it).
    """
    if worker is not None:
        return worker
    if not model:
        raise ValueError(f"{owner} needs a model name or a worker")
    if base_url:
        from modelport.workers.kinds.openai import OpenAIWorker

        return OpenAIWorker(model, base_url=base_url, api_key=api_key, api_key_env=None, rerank=True)
    return (registry or default_registry()).reranker(model)


def group_pairs(pairs: Sequence[tuple[str, str]]) -> tuple[list[RerankRequest], list[tuple[int, int]]]:
    """Pairs as one request per distinct query, and where each pair's score lands (request, document)."""
    by_query: dict[str, list[str]] = {}
    places = []
    for query, document in pairs:
        documents = by_query.setdefault(query, [])
        places.append((list(by_query).index(query), len(documents)))
        documents.append(document)
    return [RerankRequest(q, d) for q, d in by_query.items()], places
