"""The ``cross-encoder`` kind on a tiny cross-encoder built by the test (random weights)."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import pytest

from modelport.core import BadRequestError, RerankRequest
from modelport.workers import ModelRegistry
from modelport.workers.kinds.cross_encoder import CrossEncoderWorker

QUERY = "which city is the capital of france"
DOCUMENTS = [
    "Paris is the capital and largest city of France.",
    "The Loire is the longest river in France.",
    "Bread is baked from flour, water and yeast.",
    "Lyon lies where the Rhone meets the Saone.",
]


@pytest.fixture(scope="module")
def worker(tiny_cross_encoder: str) -> CrossEncoderWorker:
    built = CrossEncoderWorker(tiny_cross_encoder, batch_wait_s=0.05)
    yield built
    built.close()


def test_scores_equal_cross_encoder_predict_called_directly(
    worker: CrossEncoderWorker, tiny_cross_encoder: str
) -> None:
    from sentence_transformers import CrossEncoder

    direct = CrossEncoder(tiny_cross_encoder).predict([(QUERY, d) for d in DOCUMENTS])
    result = worker.score(RerankRequest(QUERY, DOCUMENTS))
    assert len(result.scores) == len(DOCUMENTS)
    assert result.scores == pytest.approx([float(s) for s in direct], abs=1e-5)
    # One label under a sigmoid: probabilities; the pairs' tokens are counted.
    assert all(0.0 < s < 1.0 for s in result.scores)
    assert result.prompt_tokens > sum(len(d.split()) for d in DOCUMENTS)


def test_ranking_orders_by_score_and_cuts_at_top_n(worker: CrossEncoderWorker) -> None:
    result = worker.score(RerankRequest(QUERY, DOCUMENTS))
    order = result.ranking()
    assert sorted(order) == list(range(len(DOCUMENTS)))
    assert [result.scores[i] for i in order] == sorted(result.scores, reverse=True)
    assert result.ranking(2) == order[:2]


def test_concurrent_calls_merge_into_one_batch_with_unchanged_scores(worker: CrossEncoderWorker) -> None:
    alone = [worker.score(RerankRequest(QUERY, [d])).scores[0] for d in DOCUMENTS]
    before = len(worker._engine.flushes)
    with ThreadPoolExecutor(len(DOCUMENTS)) as pool:
        together = list(pool.map(lambda d: worker.score(RerankRequest(QUERY, [d])).scores[0], DOCUMENTS))
    flushes = worker._engine.flushes[before:]
    assert sum(flushes) == len(DOCUMENTS)
    assert len(flushes) < len(DOCUMENTS), f"each call ran alone: {flushes}"
    assert together == pytest.approx(alone, abs=1e-5)


def test_async_scores_match_sync(worker: CrossEncoderWorker) -> None:
    async def main() -> list[list[float]]:
        results = await asyncio.gather(*(worker.ascore(RerankRequest(QUERY, [d])) for d in DOCUMENTS))
        return [r.scores for r in results]

    scores = asyncio.run(main())
    assert [s[0] for s in scores] == pytest.approx(worker.score(RerankRequest(QUERY, DOCUMENTS)).scores, abs=1e-5)


def test_activation_identity_gives_the_raw_logit(tiny_cross_encoder: str, worker: CrossEncoderWorker) -> None:
    import math

    raw = CrossEncoderWorker(tiny_cross_encoder, activation="identity")
    try:
        logits = raw.score(RerankRequest(QUERY, DOCUMENTS)).scores
    finally:
        raw.close()
    sigmoid = [1 / (1 + math.exp(-x)) for x in logits]
    assert sigmoid == pytest.approx(worker.score(RerankRequest(QUERY, DOCUMENTS)).scores, abs=1e-5)


def test_max_length_cuts_long_pairs(tiny_cross_encoder: str) -> None:
    short = CrossEncoderWorker(tiny_cross_encoder, max_length=16)
    try:
        long_document = "word " * 200
        result = short.score(RerankRequest(QUERY, [long_document]))
        assert result.prompt_tokens == 16
        assert short.capabilities.max_pair_tokens == 16
    finally:
        short.close()


@pytest.mark.parametrize(
    ("params", "param"),
    [({"activation": "relu"}, "activation"), ({"max_length": 1}, "max_length"), ({"max_length": True}, "max_length")],
)
def test_bad_params_name_the_field(tiny_cross_encoder: str, params: dict[str, object], param: str) -> None:
    with pytest.raises(BadRequestError) as caught:
        CrossEncoderWorker(tiny_cross_encoder, **params)  # type: ignore[arg-type]
    assert caught.value.param == param


def test_the_registry_serves_it_as_a_reranker_only(tiny_cross_encoder: str) -> None:
    registry = ModelRegistry()
    registry.register("tiny", "cross-encoder", model=tiny_cross_encoder)
    caps = registry.declared_capabilities("tiny")
    assert caps.rerank and not caps.chat and not caps.embeddings
    # It counts against a memory budget like any model: estimated from its files before a load.
    estimate = registry.estimate("tiny")
    assert estimate is not None and 1_000_000 < estimate < 50_000_000
    try:
        assert registry.reranker("tiny").score(RerankRequest(QUERY, DOCUMENTS[:2])).scores
        with pytest.raises(BadRequestError) as caught:
            registry.embedder("tiny")
        assert caught.value.param == "model"
        assert registry.residency_of("tiny")["load_state"] == "loaded"
    finally:
        registry.close()
