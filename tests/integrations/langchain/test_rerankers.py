"""``ModelPortReranker`` and ``ModelPortCrossEncoder`` in LangChain's own retrievers, in process."""

from __future__ import annotations

import pytest
from langchain_core.documents import Document
from langchain_core.vectorstores import InMemoryVectorStore

from modelport.core import RerankRequest
from modelport.integrations.langchain import ModelPortCrossEncoder, ModelPortEmbeddings, ModelPortReranker
from modelport.workers import ModelRegistry

QUERY = "Which city is the capital of France?"
TEXTS = [
    "Berlin is the capital of Germany.",
    "Paris is the capital and largest city of France.",
    "Sourdough bread rises slowly overnight.",
    "The Seine flows through Paris.",
    "Madrid is the capital of Spain.",
]


@pytest.fixture(scope="module")
def store(registry: ModelRegistry) -> InMemoryVectorStore:
    vectors = InMemoryVectorStore(ModelPortEmbeddings(model="minilm-l6", registry=registry))
    vectors.add_documents([Document(page_content=t, metadata={"n": i}, id=str(i)) for i, t in enumerate(TEXTS)])
    return vectors


def test_contextual_compression_retriever_keeps_the_best(store: InMemoryVectorStore, registry: ModelRegistry) -> None:
    from langchain_classic.retrievers import ContextualCompressionRetriever

    reranker = ModelPortReranker(model="minilm-l6", top_n=2, registry=registry)
    retriever = ContextualCompressionRetriever(
        base_compressor=reranker, base_retriever=store.as_retriever(search_kwargs={"k": 5})
    )
    kept = retriever.invoke(QUERY)
    assert len(kept) == 2
    assert kept[0].page_content == TEXTS[1]
    assert kept[0].metadata["n"] == 1 and kept[0].id == "1"
    scores = [d.metadata["relevance_score"] for d in kept]
    assert scores == sorted(scores, reverse=True)
    direct = registry.reranker("minilm-l6").score(RerankRequest(QUERY, TEXTS)).scores
    assert scores[0] == pytest.approx(max(direct))


async def test_async_compression_with_a_chat_model(store: InMemoryVectorStore, registry: ModelRegistry) -> None:
    reranker = ModelPortReranker(model="smollm2-135m", top_n=None, registry=registry)
    documents = [Document(page_content=t) for t in TEXTS]
    ranked = await reranker.acompress_documents(documents, QUERY)
    assert sorted(d.page_content for d in ranked) == sorted(TEXTS)
    scores = [d.metadata["relevance_score"] for d in ranked]
    assert scores == sorted(scores, reverse=True) and all(0 < s < 1 for s in scores)
    assert await reranker.acompress_documents([], QUERY) == []


def test_cross_encoder_reranker_takes_a_modelport_cross_encoder(registry: ModelRegistry) -> None:
    from langchain_classic.retrievers.document_compressors import CrossEncoderReranker

    encoder = ModelPortCrossEncoder(model="minilm-l6", registry=registry)
    pairs = [(QUERY, TEXTS[0]), ("bread", TEXTS[2]), (QUERY, TEXTS[1])]
    scores = encoder.score(pairs)
    by_query = registry.reranker("minilm-l6").score(RerankRequest(QUERY, [TEXTS[0], TEXTS[1]])).scores
    assert scores[0] == pytest.approx(by_query[0]) and scores[2] == pytest.approx(by_query[1])
    compressor = CrossEncoderReranker(model=encoder, top_n=1)
    (best,) = compressor.compress_documents([Document(page_content=t) for t in TEXTS], QUERY)
    assert best.page_content == TEXTS[1]


def test_a_model_that_cannot_rerank_is_refused_by_name() -> None:
    from modelport.core import BadRequestError
    from modelport.workers.kinds.fake import FakeChatWorker

    registry = ModelRegistry()
    registry.add_worker("fake", FakeChatWorker(), kind="fake")
    with pytest.raises(BadRequestError) as caught:
        registry.reranker("fake")
    assert caught.value.param == "model"
    # Pydantic reports the same error as the class's validation error.
    with pytest.raises(ValueError, match="'fake' cannot rerank"):
        ModelPortReranker(model="fake", registry=registry)
    with pytest.raises(ValueError, match="model name or a worker"):
        ModelPortReranker()
