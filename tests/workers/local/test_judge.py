"""Local chat models rerank by the probability of "yes" after a judging prompt."""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor

import pytest

from modelport.core import BadRequestError, RerankRequest
from modelport.workers import ChatWorker, ModelRegistry
from modelport.workers.local.judge import ChatJudge, _yes_probability

QUERY = "What is the capital of France?"
DOCUMENTS = [
    "The capital of Brazil is Brasilia.",
    "Paris is the capital of France.",
    "Horses and cows are both animals.",
]


def test_yes_probability_is_a_sigmoid_of_the_log_odds() -> None:
    assert _yes_probability([math.log(0.3)], [math.log(0.1)]) == pytest.approx(0.75)
    # Spellings on one side add up.
    assert _yes_probability([math.log(0.2), math.log(0.1)], [math.log(0.1)]) == pytest.approx(0.75)
    assert _yes_probability([-math.inf], [-math.inf]) == 0.5


def test_llama_cpp_scores_are_probabilities_and_stable(llama_worker: ChatWorker) -> None:
    first = llama_worker.score(RerankRequest(QUERY, DOCUMENTS))  # type: ignore[attr-defined]
    again = llama_worker.score(RerankRequest(QUERY, DOCUMENTS))  # type: ignore[attr-defined]
    assert all(0.0 < s < 1.0 for s in first.scores)
    # Equal up to llama.cpp's batch numerics (which rows share a step, a reused prompt prefix).
    assert first.scores == pytest.approx(again.scores, abs=1e-2)
    assert first.prompt_tokens > 3 * 20
    # One pair alone scores as it does among others (the batch does not leak between rows).
    alone = [llama_worker.score(RerankRequest(QUERY, [d])).scores[0] for d in DOCUMENTS]  # type: ignore[attr-defined]
    assert alone == pytest.approx(first.scores, abs=1e-2)


def test_transformers_and_llama_cpp_agree_on_the_same_weights(llama_worker: ChatWorker, hf_worker: ChatWorker) -> None:
    # The same GGUF, one dequantised by transformers: the judgement must come out near equal.
    llama = llama_worker.score(RerankRequest(QUERY, DOCUMENTS)).scores  # type: ignore[attr-defined]
    hf = hf_worker.score(RerankRequest(QUERY, DOCUMENTS)).scores  # type: ignore[attr-defined]
    assert hf == pytest.approx(llama, abs=0.05)


def test_the_probes_are_one_token_spellings(llama_worker: ChatWorker) -> None:
    judge = llama_worker._judge  # type: ignore[attr-defined]
    yes, no = judge.probes()
    assert yes and no and not set(yes) & set(no)
    assert all(llama_worker._detokenize([t]).strip().lower() == "yes" for t in yes)  # type: ignore[attr-defined]


def test_a_pair_past_the_context_names_the_document(llama_worker: ChatWorker) -> None:
    with pytest.raises(BadRequestError) as caught:
        llama_worker.score(RerankRequest(QUERY, ["short", "word " * 5000]))  # type: ignore[attr-defined]
    assert caught.value.param == "documents[1]"
    assert caught.value.code == "context_length_exceeded"


def test_the_prompt_must_hold_both_fields() -> None:
    with pytest.raises(BadRequestError) as caught:
        ChatJudge(
            render=lambda r: None,  # type: ignore[arg-type,return-value]
            generate=lambda *a: iter(()),
            tokenize=lambda t: [],
            max_context=10,
            threads=ThreadPoolExecutor(1),
            slots=ThreadPoolExecutor(1),  # type: ignore[arg-type]
            prompt="Does {document} answer it?",
        )
    assert caught.value.param == "rerank_prompt"


def test_an_entry_sets_its_own_prompt(llama_worker: ChatWorker) -> None:
    registry = ModelRegistry()
    from modelport.workers.model_registry import BUILTIN_MODELS

    entry = next(e for e in BUILTIN_MODELS if e.name == "smollm2-135m")
    prompt = "Question: {query}\nPassage: {document}\nDoes the passage answer the question? Say yes or no."
    registry.register("judge", "llama-cpp", **{**entry.params, "n_parallel": 2, "n_ctx": 1024, "rerank_prompt": prompt})
    try:
        worker = registry.reranker("judge")
        assert worker._judge.template == prompt  # type: ignore[attr-defined]
        ours = worker.score(RerankRequest(QUERY, DOCUMENTS)).scores
        default = llama_worker.score(RerankRequest(QUERY, DOCUMENTS)).scores  # type: ignore[attr-defined]
        assert ours != pytest.approx(default, abs=1e-4)
    finally:
        registry.close()
