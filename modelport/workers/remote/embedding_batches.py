"""What the remote kinds share for embeddings: batching and assembling the result."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

from modelport.core.request import EmbeddingRequest, EmbeddingResult

__all__ = ["batches", "combine"]


def batches(texts: Sequence[str], size: int) -> Iterator[list[str]]:
    """Splits ``texts`` into runs of at most ``size``."""
    for start in range(0, len(texts), size):
        yield list(texts[start : start + size])


def _normalized(vector: list[float]) -> list[float]:
    norm = math.sqrt(sum(x * x for x in vector))
    return [x / norm for x in vector] if norm > 0 else vector


def combine(parts: Sequence[tuple[list[list[float]], int]], request: EmbeddingRequest, model: str) -> EmbeddingResult:
    """Joins per-batch (vectors, tokens) answers in order, normalising when the request asks."""
    vectors = [v for batch, _ in parts for v in batch]
    if request.normalize:
        vectors = [_normalized(v) for v in vectors]
    return EmbeddingResult(vectors, sum(tokens for _, tokens in parts), model)
