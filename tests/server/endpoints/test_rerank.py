"""``/v1/rerank`` (also ``/rerank``, ``/v2/rerank``) and ``/v1/score`` on one real server.

The server holds the session's MiniLM (cosine) and SmolLM2 (its "yes" probability), a tiny
cross-encoder entry that loads on first use, and a small ``max_embedding_tokens``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from modelport.core import RerankRequest
from modelport.server import create_app
from modelport.workers import ModelEntry, ModelRegistry
from modelport.workers.kinds.fake import FakeChatWorker
from modelport.workers.kinds.openai import OpenAIWorker
from tests.loopback import serve

QUERY = "Which city is the capital of France?"
DOCUMENTS = [
    "Berlin is the capital of Germany.",
    "Paris is the capital and largest city of France.",
    "Sourdough bread rises slowly.",
]
TOKEN_CAP = 2_000


@pytest.fixture(scope="module")
def served(registry: ModelRegistry, tiny_cross_encoder: str) -> Iterator[tuple[str, ModelRegistry]]:
    models = ModelRegistry()
    models.add_worker("minilm-l6", registry.embedder("minilm-l6"), kind="sentence-transformers")
    models.add_worker("smollm2-135m", registry.chat("smollm2-135m"), kind="llama-cpp")
    models.add_worker("fake", FakeChatWorker(), kind="fake")
    models.add(ModelEntry("tiny-reranker", "cross-encoder", {"model": tiny_cross_encoder}, keep_alive=-1))
    app = create_app(models, max_embedding_tokens=TOKEN_CAP)
    with serve(app) as url:
        yield url, models
    models.remove("tiny-reranker")


@pytest.fixture(scope="module")
def http(served: tuple[str, ModelRegistry]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served[0], timeout=120) as client:
        yield client


def rerank(http: httpx.Client, path: str = "/v1/rerank", **body: Any) -> httpx.Response:
    return http.post(path, json={"model": "minilm-l6", "query": QUERY, "documents": DOCUMENTS, **body})


@pytest.mark.parametrize("path", ["/v1/rerank", "/rerank", "/v2/rerank"])
def test_rerank_answers_sorted_results_at_every_path(http: httpx.Client, registry: ModelRegistry, path: str) -> None:
    response = rerank(http, path, top_n=2)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"] == "minilm-l6" and body["id"].startswith("rerank-")
    direct = registry.reranker("minilm-l6").score(RerankRequest(QUERY, DOCUMENTS))
    assert [r["index"] for r in body["results"]] == direct.ranking(2)
    assert [r["relevance_score"] for r in body["results"]] == pytest.approx(
        [direct.scores[i] for i in direct.ranking(2)]
    )
    assert body["results"][0]["document"] == {"text": DOCUMENTS[body["results"][0]["index"]]}
    assert body["usage"]["total_tokens"] == direct.prompt_tokens > 0


def test_documents_as_objects_and_without_texts_back(http: httpx.Client) -> None:
    documents = [{"text": d} for d in DOCUMENTS]
    body = rerank(http, documents=documents, return_documents=False).json()
    assert len(body["results"]) == 3
    assert all("document" not in r for r in body["results"])
    assert body["results"][0]["index"] == 1


def test_a_chat_model_reranks_by_its_yes_probability(http: httpx.Client) -> None:
    body = rerank(http, model="smollm2-135m").json()
    scores = [r["relevance_score"] for r in body["results"]]
    assert scores == sorted(scores, reverse=True) and all(0 < s < 1 for s in scores)
    assert body["usage"]["total_tokens"] > 3 * 20


def test_a_cross_encoder_loads_on_first_use_and_is_listed(
    http: httpx.Client, served: tuple[str, ModelRegistry]
) -> None:
    _, models = served
    assert models.residency_of("tiny-reranker")["load_state"] == "unloaded"
    body = rerank(http, model="tiny-reranker").json()
    assert sorted(r["index"] for r in body["results"]) == [0, 1, 2]
    assert models.residency_of("tiny-reranker")["load_state"] == "loaded"
    cards = {m["id"]: m for m in http.get("/v1/models").json()["data"]}
    assert cards["tiny-reranker"]["task"] == "rerank" and cards["tiny-reranker"]["roles"] == ["rerank"]
    assert cards["minilm-l6"]["roles"] == ["embedding", "rerank"]
    assert cards["smollm2-135m"]["roles"] == ["chat", "rerank"]


def test_keep_alive_zero_unloads_the_reranker_after_its_request(
    http: httpx.Client, served: tuple[str, ModelRegistry]
) -> None:
    _, models = served
    assert rerank(http, model="tiny-reranker", keep_alive=0).status_code == 200
    for _ in range(100):
        if models.residency_of("tiny-reranker")["load_state"] == "unloaded":
            break
        import time

        time.sleep(0.05)
    assert models.residency_of("tiny-reranker")["load_state"] == "unloaded"


def test_score_one_against_many_and_pairwise(http: httpx.Client, registry: ModelRegistry) -> None:
    one = http.post("/v1/score", json={"model": "minilm-l6", "text_1": QUERY, "text_2": DOCUMENTS}).json()
    assert one["object"] == "list" and [d["index"] for d in one["data"]] == [0, 1, 2]
    assert all(d["object"] == "score" for d in one["data"])
    direct = registry.reranker("minilm-l6").score(RerankRequest(QUERY, DOCUMENTS)).scores
    assert [d["score"] for d in one["data"]] == pytest.approx(direct)
    pairs = http.post(
        "/v1/score", json={"model": "minilm-l6", "text_1": [QUERY, "bread"], "text_2": [DOCUMENTS[1], DOCUMENTS[2]]}
    ).json()
    assert [d["score"] for d in pairs["data"]] == pytest.approx(
        [direct[1], registry.reranker("minilm-l6").score(RerankRequest("bread", [DOCUMENTS[2]])).scores[0]]
    )
    assert pairs["usage"]["prompt_tokens"] == pairs["usage"]["total_tokens"] > 0


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("/v1/rerank", {"documents": []}, "documents"),
        ("/v1/rerank", {"documents": ["a", ""]}, "documents[1]"),
        ("/v1/rerank", {"documents": ["a", {"title": "no text"}]}, "documents[1]"),
        ("/v1/rerank", {"documents": ["d"] * 2049}, "documents"),
        ("/v1/rerank", {"query": " "}, "query"),
        ("/v1/rerank", {"top_n": 0}, "top_n"),
        ("/v1/rerank", {"documents": ["word " * 400] * 5}, "documents"),
        ("/v1/rerank", {"model": "fake"}, "model"),
        ("/rerank", {"documents": []}, "documents"),
        ("/v2/rerank", {"model": "fake"}, "model"),
        ("/v1/score", {"text_1": ["a", "b"], "text_2": ["a", "b", "c"]}, "text_2"),
        ("/v1/score", {"text_1": "q", "text_2": []}, "text_2"),
        ("/v1/score", {"text_1": "q", "text_2": ["x", ""]}, "text_2[1]"),
        ("/v1/score", {"text_1": "q", "text_2": ["word " * 400] * 5}, "text_2"),
        ("/v1/score", {"model": "fake", "text_1": "q", "text_2": "d"}, "model"),
    ],
)
def test_bad_requests_get_400_naming_the_field(http: httpx.Client, path: str, body: dict[str, Any], param: str) -> None:
    if path.endswith("score"):
        response = http.post(path, json={"model": "minilm-l6", **body})
    else:
        response = http.post(path, json={"model": "minilm-l6", "query": QUERY, "documents": DOCUMENTS, **body})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == param and error["type"] == "invalid_request_error"
    if "word" in str(body):
        assert "server.max_embedding_tokens" in error["message"]


def test_metrics_and_access_log_count_requests_and_pairs(http: httpx.Client, caplog: pytest.LogCaptureFixture) -> None:
    def counted(name: str) -> float:
        lines = [line for line in http.get("/metrics").text.splitlines() if line.startswith(name)]
        return sum(float(line.split()[-1]) for line in lines if 'model_name="minilm-l6"' in line)

    requests, pairs = counted("modelport_rerank_requests_total"), counted("modelport_rerank_pairs_total")
    with caplog.at_level(logging.INFO, logger="modelport.access"):
        assert rerank(http).status_code == 200
        http.post("/v1/score", json={"model": "minilm-l6", "text_1": ["a", "b"], "text_2": ["c", "d"]})
    assert counted("modelport_rerank_requests_total") == requests + 2
    assert counted("modelport_rerank_pairs_total") == pairs + 5
    lines = [r.getMessage() for r in caplog.records if r.name == "modelport.access"]
    assert any("/v1/rerank" in line and "pairs=3" in line for line in lines), lines
    assert any("/v1/score" in line and "pairs=2" in line for line in lines), lines


def test_the_openai_kind_reranks_through_this_endpoint(http: httpx.Client, served: tuple[str, ModelRegistry]) -> None:
    worker = OpenAIWorker("minilm-l6", base_url=f"{served[0]}/v1", api_key="unused", rerank=True)
    try:
        remote = worker.score(RerankRequest(QUERY, DOCUMENTS))
    finally:
        worker.close()
    local = served[1].reranker("minilm-l6").score(RerankRequest(QUERY, DOCUMENTS))
    assert remote.scores == pytest.approx(local.scores)
    assert remote.prompt_tokens == local.prompt_tokens


def test_langchain_compression_retriever_through_the_server(served: tuple[str, ModelRegistry]) -> None:
    from langchain_classic.retrievers import ContextualCompressionRetriever
    from langchain_core.documents import Document
    from langchain_core.vectorstores import InMemoryVectorStore

    from modelport.integrations.langchain import ModelPortEmbeddings, ModelPortReranker

    store = InMemoryVectorStore(ModelPortEmbeddings(model="minilm-l6"))
    store.add_documents([Document(page_content=d) for d in DOCUMENTS])
    reranker = ModelPortReranker(model="minilm-l6", top_n=1, base_url=f"{served[0]}/v1", api_key="unused")
    retriever = ContextualCompressionRetriever(
        base_compressor=reranker, base_retriever=store.as_retriever(search_kwargs={"k": 3})
    )
    (best,) = retriever.invoke(QUERY)
    assert best.page_content == DOCUMENTS[1]
    assert 0 < best.metadata["relevance_score"] <= 1
