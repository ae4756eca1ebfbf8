"""Remote rerank: the ``openai`` kind with ``rerank: true`` and ``dashscope``'s text-rerank API.

Scripted upstreams answer in each documented shape: Jina's and vLLM's (``usage.total_tokens``,
documents echoed), Cohere's (``meta.billed_units``, no tokens) and DashScope's native one.
"""

from __future__ import annotations

import pytest

from modelport.core import RerankRequest, UpstreamUnavailableError
from modelport.workers.kinds.dashscope import DashScopeWorker
from modelport.workers.kinds.openai import OpenAIWorker
from tests.loopback import Reply, Upstream

REQUEST = RerankRequest("capital of France", ["Berlin is in Germany.", "Paris is in France.", "Cats purr."])


def openai_reranker(url: str, **params: object) -> OpenAIWorker:
    return OpenAIWorker("bge-reranker", base_url=url, api_key="k", rerank=True, **params)  # type: ignore[arg-type]


def test_jina_and_vllm_shape(upstream_url: str, upstream: Upstream) -> None:
    upstream.add(
        Reply(
            body={
                "id": "rerank-1",
                "model": "bge-reranker",
                "usage": {"total_tokens": 31},
                "results": [
                    {"index": 1, "relevance_score": 0.98, "document": {"text": "Paris is in France."}},
                    {"index": 0, "relevance_score": 0.12, "document": {"text": "Berlin is in Germany."}},
                    {"index": 2, "relevance_score": 0.01, "document": {"text": "Cats purr."}},
                ],
            }
        )
    )
    result = openai_reranker(upstream_url).score(REQUEST)
    assert result.scores == [0.12, 0.98, 0.01]
    assert result.prompt_tokens == 31
    seen = upstream.seen[0]
    assert seen.path == "rerank"
    assert seen.body == {
        "model": "bge-reranker",
        "query": "capital of France",
        "documents": list(REQUEST.documents),
        "top_n": 3,
        "return_documents": False,
    }
    assert seen.headers["authorization"] == "Bearer k"


async def test_cohere_v2_shape_async(upstream_url: str, upstream: Upstream) -> None:
    upstream.add(
        Reply(
            body={
                "id": "abc",
                "results": [
                    {"index": 2, "relevance_score": 0.3},
                    {"index": 0, "relevance_score": 0.2},
                    {"index": 1, "relevance_score": 0.9},
                ],
                "meta": {"api_version": {"version": "2"}, "billed_units": {"search_units": 1}},
            }
        )
    )
    result = await openai_reranker(upstream_url, rerank_path="/v2/rerank").ascore(REQUEST)
    assert result.scores == [0.2, 0.9, 0.3]
    assert result.prompt_tokens == 0
    assert upstream.seen[0].path == "v2/rerank"


def test_an_answer_missing_a_document_is_an_upstream_failure(upstream_url: str, upstream: Upstream) -> None:
    upstream.add(Reply(body={"results": [{"index": 0, "relevance_score": 0.5}]}))
    with pytest.raises(UpstreamUnavailableError, match="3 documents"):
        openai_reranker(upstream_url).score(REQUEST)


def test_without_rerank_the_openai_kind_scores_by_cosine(upstream_url: str, upstream: Upstream) -> None:
    def vectors(*rows: list[float]) -> Reply:
        data = [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(rows)]
        return Reply(
            body={"object": "list", "data": data, "model": "e", "usage": {"prompt_tokens": 2, "total_tokens": 2}}
        )

    upstream.add(vectors([1.0, 0.0]), vectors([1.0, 0.0], [0.0, 1.0], [0.6, 0.8]))
    worker = OpenAIWorker("embedder", base_url=upstream_url, api_key="k", embedding_encoding="float")
    result = worker.score(REQUEST)
    assert result.scores == pytest.approx([1.0, 0.0, 0.6])
    assert [s.path for s in upstream.seen] == ["embeddings", "embeddings"]


def test_dashscope_text_rerank(upstream_url: str, upstream: Upstream) -> None:
    upstream.add(
        Reply(
            body={
                "output": {
                    "results": [
                        {"index": 1, "relevance_score": 0.93},
                        {"index": 2, "relevance_score": 0.05},
                        {"index": 0, "relevance_score": 0.33},
                    ]
                },
                "usage": {"total_tokens": 57},
                "request_id": "5a2c",
            }
        )
    )
    worker = DashScopeWorker("gte-rerank-v2", base_url=upstream_url, api_key="sk-d", rerank=True)
    result = worker.score(REQUEST)
    assert result.scores == [0.33, 0.93, 0.05]
    assert result.prompt_tokens == 57
    seen = upstream.seen[0]
    assert seen.path == "services/rerank/text-rerank/text-rerank"
    assert seen.body == {
        "model": "gte-rerank-v2",
        "input": {"query": "capital of France", "documents": list(REQUEST.documents)},
        "parameters": {"return_documents": False, "top_n": 3},
    }


def test_rerank_must_be_a_boolean(upstream_url: str) -> None:
    from modelport.core import BadRequestError

    with pytest.raises(BadRequestError) as caught:
        OpenAIWorker("m", base_url=upstream_url, api_key="k", rerank="yes")  # type: ignore[arg-type]
    assert caught.value.param == "rerank"
