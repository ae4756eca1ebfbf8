"""Reranking: quality on a retrieval set, and the cross-encoder's batching engine.

**Quality.** On ``benchmarks/data/rerank_set.json`` (120 questions over 300 passages about
invented towns, see ``data/make_rerank_set.py``), MiniLM-L6 retrieves the top ``--candidates``
passages for each question; each reranker then reorders them. Reported per reranker: hit@1 (the
answer ranked first) and MRR@10 (mean of 1/rank of the answer within the first ten, 0 if absent),
and the time it took. Rerankers: none (embeddings alone), MiniLM's cosine, and each built-in chat
model's "yes" probability.

**Speed.** A cross-encoder built from MiniLM-L6's packaged weights under a random one-label head
(so a pair costs what a real MiniLM cross-encoder's does): pairs/s of 64 concurrent single-pair
``score()`` calls against one 64-pair call, in process; then the same through ``/v1/rerank`` of a
real server on loopback. Rounds are interleaved; medians beside the best.

    python benchmarks/bench_rerank.py [--candidates 10] [--rounds 5] [--skip-quality] [--skip-speed]
        [--rerankers minilm-l6 smollm2-135m ...]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from modelport.core import EmbeddingRequest, RerankRequest
from modelport.workers import ModelRegistry

DATA = Path(__file__).with_name("data") / "rerank_set.json"
RERANKERS = ("minilm-l6", "smollm2-135m", "smollm2-135m-hf", "gemma3-270m")


def metrics(ranks: list[int | None]) -> tuple[float, float]:
    """hit@1 and MRR@10 from each question's 1-based rank of its answer (``None``: not retrieved)."""
    hit = sum(1 for r in ranks if r == 1) / len(ranks)
    mrr = sum(1 / r for r in ranks if r is not None and r <= 10) / len(ranks)
    return hit, mrr


def quality(registry: ModelRegistry, candidates: int, rerankers: list[str]) -> None:
    data = json.loads(DATA.read_text(encoding="utf-8"))
    passages = [p["text"] for p in data["passages"]]
    questions = data["questions"]
    embedder = registry.embedder("minilm-l6")
    import numpy as np

    docs = np.array(embedder.embed(EmbeddingRequest(passages, input_type="document")).vectors)
    queries = np.array(embedder.embed(EmbeddingRequest([q["question"] for q in questions], input_type="query")).vectors)
    retrieved = [list(np.argsort(-(docs @ q))[:candidates]) for q in queries]
    recall = sum(q["answer"] in r for q, r in zip(questions, retrieved, strict=True)) / len(questions)
    print(
        f"{len(questions)} questions, {len(passages)} passages; the answer is among MiniLM's top {candidates} "
        f"for {recall:.0%} of them (the ceiling of any reranker here)\n"
    )
    print(f"{'reranker':28} {'hit@1':>6} {'MRR@10':>7} {'seconds':>8}")

    def report(name: str, orders: list[list[int]], seconds: float) -> None:
        ranks = [o.index(q["answer"]) + 1 if q["answer"] in o else None for q, o in zip(questions, orders, strict=True)]
        hit, mrr = metrics(ranks)
        print(f"{name:28} {hit:6.3f} {mrr:7.3f} {seconds:8.1f}", flush=True)

    report("embeddings alone", [[int(i) for i in r] for r in retrieved], 0.0)
    for name in rerankers:
        reranker = registry.reranker(name)
        reranker.score(RerankRequest("warm up", ["a passage"]))
        started = time.perf_counter()
        orders = []
        for q, r in zip(questions, retrieved, strict=True):
            result = reranker.score(RerankRequest(q["question"], [passages[i] for i in r]))
            orders.append([int(r[i]) for i in result.ranking()])
        label = f"+ {name} " + ("(cosine)" if name == "minilm-l6" else "(yes/no)")
        report(label, orders, time.perf_counter() - started)
        if name != "minilm-l6":
            registry.residency.unload(name, reason="admin")  # one chat model in memory at a time


def speed(rounds: int) -> None:
    from modelport.workers.kinds.cross_encoder import CrossEncoderWorker
    from tests.cross_encoders import build_minilm

    folder = build_minilm(Path(tempfile.mkdtemp(prefix="minilm-cross-encoder-")))
    worker = CrossEncoderWorker(str(folder))
    data = json.loads(DATA.read_text(encoding="utf-8"))
    query = data["questions"][0]["question"]
    documents = [p["text"] for p in data["passages"][:64]]
    pool = ThreadPoolExecutor(64)

    def one_call() -> float:
        started = time.perf_counter()
        worker.score(RerankRequest(query, documents))
        return len(documents) / (time.perf_counter() - started)

    def concurrent() -> float:
        started = time.perf_counter()
        list(pool.map(lambda d: worker.score(RerankRequest(query, [d])), documents))
        return len(documents) / (time.perf_counter() - started)

    one_call(), concurrent()  # warm up
    ones, many = [], []
    for _ in range(rounds):
        ones.append(one_call())
        many.append(concurrent())
    print("\ncross-encoder (MiniLM-L6 weights, random head), 64 pairs, in process")
    print(f"{'':36} {'median pairs/s':>15} {'best':>8}")
    print(f"{'one 64-pair call':36} {statistics.median(ones):15.0f} {max(ones):8.0f}")
    print(f"{'64 concurrent single-pair calls':36} {statistics.median(many):15.0f} {max(many):8.0f}")
    print(
        f"ratio (concurrent / one call): median {statistics.median(many) / statistics.median(ones):.2f}, "
        f"best {max(many) / max(ones):.2f}",
        flush=True,
    )
    worker.close()
    http_speed(str(folder), query, documents, rounds)


def http_speed(folder: str, query: str, documents: list[str], rounds: int) -> None:
    import httpx

    from tests.loopback import serve_process

    config = Path(tempfile.mkdtemp()) / "rerank.yaml"
    config.write_text(
        f"models:\n  - name: ce\n    kind: cross-encoder\n    params: {{model: {json.dumps(folder)}}}\n"
        "server:\n  preload: true\n",
        encoding="utf-8",
    )
    with serve_process("--config", str(config), ready="/health/ready") as server:
        client = httpx.Client(base_url=server.base, timeout=120, limits=httpx.Limits(max_connections=64))
        pool = ThreadPoolExecutor(64)

        def post(docs: list[str]) -> None:
            response = client.post("/v1/rerank", json={"model": "ce", "query": query, "documents": docs})
            response.raise_for_status()

        def one_call() -> float:
            started = time.perf_counter()
            post(documents)
            return len(documents) / (time.perf_counter() - started)

        def concurrent() -> float:
            started = time.perf_counter()
            list(pool.map(lambda d: post([d]), documents))
            return len(documents) / (time.perf_counter() - started)

        one_call(), concurrent()
        ones, many = [], []
        for _ in range(rounds):
            ones.append(one_call())
            many.append(concurrent())
    print("\nthe same through /v1/rerank (modelport serve on loopback)")
    print(f"{'one 64-document request':36} {statistics.median(ones):15.0f} {max(ones):8.0f}")
    print(f"{'64 concurrent one-document requests':36} {statistics.median(many):15.0f} {max(many):8.0f}")
    print(f"ratio: median {statistics.median(many) / statistics.median(ones):.2f}, best {max(many) / max(ones):.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--candidates", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--skip-quality", action="store_true")
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--rerankers", nargs="+", default=list(RERANKERS), help="the rerankers to measure")
    args = parser.parse_args()
    if not args.skip_speed:
        speed(args.rounds)
    if not args.skip_quality:
        registry = ModelRegistry.builtin()
        try:
            quality(registry, args.candidates, args.rerankers)
        finally:
            registry.close()


if __name__ == "__main__":
    main()
