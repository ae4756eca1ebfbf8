"""Batching in the transformers and sentence-transformers workers, on the real models."""

from __future__ import annotations

import asyncio
import json

import jsonschema
import numpy as np

from modelport.core import ChatRequest, EmbeddingRequest, ResponseFormat, SystemMessage, UserMessage
from modelport.workers import ChatWorker, EmbeddingWorker

SYSTEM = SystemMessage("You are a helpful assistant.")
LOOP = "Repeat the word 'apple' fifty times, separated by spaces."


def greedy(text: str, **kwargs: object) -> ChatRequest:
    return ChatRequest([SYSTEM, UserMessage(text)], temperature=0, **kwargs)  # type: ignore[arg-type]


async def test_transformers_batches_concurrent_requests(hf_worker: ChatWorker) -> None:
    batcher = hf_worker._batcher  # type: ignore[attr-defined]
    assert hf_worker.parallelism == 8
    before = dict(batcher.batch_sizes)
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    requests = [greedy(f"Name a fruit, number {i}.", max_tokens=12) for i in range(5)]
    requests += [greedy("Where is the Eiffel Tower?", response_format=ResponseFormat("json_schema", schema))]
    requests += [greedy(LOOP, max_tokens=16, frequency_penalty=2.0)]
    results = await asyncio.gather(*(hf_worker.ainvoke(r) for r in requests))
    assert any(n > before.get(size, 0) for size, n in batcher.batch_sizes.items() if size >= 4)
    for result, request in zip(results, requests, strict=True):
        assert result.text and result.usage.completion_tokens <= (request.max_tokens or 10**6)
    jsonschema.validate(json.loads(results[5].text), schema)  # grammar rows batch too
    plain = hf_worker.invoke(greedy(LOOP, max_tokens=16)).text
    assert plain.count("apple") >= 4
    assert results[6].text.count("apple") < plain.count("apple")  # the penalty is this row's alone


async def test_transformers_cancelled_row_leaves_the_batch(hf_worker: ChatWorker) -> None:
    stream = hf_worker.astream(greedy("Count from one to a thousand.", max_tokens=300))
    other = asyncio.ensure_future(hf_worker.ainvoke(greedy("Name a colour.", max_tokens=8)))
    async for _ in stream:
        break
    await stream.aclose()
    result = await asyncio.wait_for(other, timeout=60)
    assert result.usage.completion_tokens <= 8


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
