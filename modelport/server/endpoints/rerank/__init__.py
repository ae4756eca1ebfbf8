"""Reranking over HTTP: ``/v1/rerank`` (Jina's and Cohere's shape) and ``/v1/score`` (vLLM's).

``wire`` holds the request and answer bodies; ``endpoint`` checks them, turns them into core
``RerankRequest`` objects for the model's reranker, and answers.
"""

__all__: list[str] = []
