"""The sentence-transformers engine on the real MiniLM: concurrent calls merge into one encode."""

from __future__ import annotations

import asyncio

import numpy as np

from modelport.core import EmbeddingRequest
from modelport.workers import EmbeddingWorker


async def test_embedding_calls_merge_into_one_encode(minilm: EmbeddingWorker) -> None:
    batcher = minilm._batcher  # type: ignore[attr-defined]
    texts = [f"sentence {i} about {w}" for i, w in enumerate(["bread", "ships", "lamps", "cats"] * 8)]
    solo = [minilm.embed(EmbeddingRequest([t])).vectors[0] for t in texts[:2]]
    solo.append(minilm.embed(EmbeddingRequest([texts[2]], normalize=False)).vectors[0])
    before = len(batcher.flushes)
    requests = [EmbeddingRequest([t]) for t in texts]
    requests[1] = EmbeddingRequest([texts[1]], dimensions=32)
    requests[2] = EmbeddingRequest([texts[2]], normalize=False)
    results = await asyncio.gather(*(minilm.aembed(r) for r in requests))
    flushes = batcher.flushes[before:]
    assert sum(flushes) == len(texts) and len(flushes) <= 4  # merged, not one call each
    assert np.allclose(results[0].vectors[0], solo[0], atol=1e-5)
    short = np.array(results[1].vectors[0])
    assert len(short) == 32 and np.isclose(np.linalg.norm(short), 1.0)
    assert np.allclose(short, np.array(solo[1][:32]) / np.linalg.norm(solo[1][:32]), atol=1e-5)
    # MiniLM's own pipeline ends in a Normalize module: unnormalised here means left as encoded.
    assert np.allclose(results[2].vectors[0], solo[2], atol=1e-5)
    assert all(r.prompt_tokens > 0 for r in results)
