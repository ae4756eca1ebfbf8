"""``ModelPortRerank`` in a LlamaIndex query engine's ``node_postprocessors``."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest
from llama_index.core import Document, VectorStoreIndex
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

from modelport.integrations.llama_index import ModelPortEmbedding, ModelPortLLM, ModelPortRerank
from modelport.workers import ModelRegistry

QUERY = "Which city is the capital of France?"
TEXTS = [
    "Berlin is the capital of Germany.",
    "Paris is the capital and largest city of France.",
    "Sourdough bread rises slowly overnight.",
    "The Seine flows through Paris.",
    "Madrid is the capital of Spain.",
]


class _Events(BaseEventHandler):
    seen: ClassVar[list[Any]] = []

    @classmethod
    def class_name(cls) -> str:
        return "Events"

    def handle(self, event: Any, **kwargs: Any) -> None:
        self.seen.append(event)


def test_query_engine_reranks_retrieved_nodes(registry: ModelRegistry) -> None:
    index = VectorStoreIndex.from_documents(
        [Document(text=t) for t in TEXTS], embed_model=ModelPortEmbedding("minilm-l6", registry=registry)
    )
    rerank = ModelPortRerank(model="minilm-l6", top_n=2, registry=registry)
    engine = index.as_query_engine(
        llm=ModelPortLLM(model="smollm2-135m", registry=registry, max_tokens=16),
        similarity_top_k=5,
        node_postprocessors=[rerank],
    )
    handler = _Events()
    get_dispatcher().add_event_handler(handler)
    try:
        response = engine.query(QUERY)
    finally:
        get_dispatcher().event_handlers.remove(handler)
    assert len(response.source_nodes) == 2
    assert response.source_nodes[0].node.get_content() == TEXTS[1]
    scores = [n.score for n in response.source_nodes]
    assert scores == sorted(scores, reverse=True)
    names = [type(e).__name__ for e in handler.seen]
    assert "ReRankStartEvent" in names and "ReRankEndEvent" in names
    start = next(e for e in handler.seen if type(e).__name__ == "ReRankStartEvent")
    assert start.top_n == 2 and start.model_name == "minilm-l6" and len(start.nodes) == 5


async def test_async_postprocess_with_model_name_and_retrieval_score(registry: ModelRegistry) -> None:
    rerank = ModelPortRerank("minilm-l6", top_n=1, registry=registry, keep_retrieval_score=True)
    nodes = [NodeWithScore(node=TextNode(text=t), score=0.5) for t in TEXTS]
    (best,) = await rerank.apostprocess_nodes(nodes, QueryBundle(QUERY))
    assert best.node.get_content() == TEXTS[1]
    assert best.node.metadata["retrieval_score"] == 0.5
    assert rerank.postprocess_nodes([], QueryBundle(QUERY)) == []
    with pytest.raises(ValueError, match="disagree"):
        ModelPortRerank("minilm-l6", model="other", registry=registry)
