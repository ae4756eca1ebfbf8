"""``ModelPortRerank``: a modelport reranker as a LlamaIndex node postprocessor."""

from __future__ import annotations

from typing import Any

from llama_index.core.bridge.pydantic import Field, PrivateAttr
from llama_index.core.callbacks import CBEventType, EventPayload
from llama_index.core.instrumentation import get_dispatcher  # type: ignore[attr-defined]
from llama_index.core.instrumentation.events.rerank import ReRankEndEvent, ReRankStartEvent
from llama_index.core.postprocessor.types import BaseNodePostprocessor
from llama_index.core.schema import MetadataMode, NodeWithScore, QueryBundle

from modelport.core.rerank import RerankRequest, RerankResult
from modelport.integrations.rerank_source import resolve_reranker
from modelport.workers import ModelRegistry, RerankWorker

__all__ = ["ModelPortRerank"]

dispatcher = get_dispatcher(__name__)


class ModelPortRerank(BaseNodePostprocessor):
    """Keeps the ``top_n`` nodes most relevant to the query, best first, scored by a modelport reranker.

    Emits ``ReRankStartEvent`` and ``ReRankEndEvent`` and a ``RERANKING`` callback event, as
    LlamaIndex's own rerankers do.

    Example:
        >>> rerank = ModelPortRerank(model="minilm-l6", top_n=2)
        >>> index.as_query_engine(similarity_top_k=10, node_postprocessors=[rerank])
    """

    model_name: str = Field(description="The model that scores.")
    top_n: int = Field(default=2, description="Nodes kept.")
    keep_retrieval_score: bool = Field(default=False, description="Keep the retriever's score in metadata.")
    base_url: str | None = Field(default=None, description="Score through this server's /rerank instead.")

    _worker: RerankWorker = PrivateAttr()

    def __init__(
        self,
        model_name: str = "",
        *,
        model: str | None = None,
        top_n: int = 2,
        worker: RerankWorker | None = None,
        registry: ModelRegistry | None = None,
        base_url: str | None = None,
        api_key: str | None = None,
        **kwargs: Any,
    ) -> None:
        """Builds the postprocessor.

        Args:
            model_name: The model that scores: a reranker, embedder or local chat model.
            model: The same, by the name other rerankers use.
            top_n: Nodes kept.
            worker: A reranker to use directly instead of a registered one.
            registry: Where to look ``model_name`` up; the default registry when omitted.
            base_url: A server's API root: score through its ``/rerank`` instead.
            api_key: That server's key.
            **kwargs: ``BaseNodePostprocessor`` settings (``keep_retrieval_score``, ``callback_manager``).
        """
        if model is not None:
            if model_name and model_name != model:
                raise ValueError(f"model={model!r} and model_name={model_name!r} disagree; pass one of them")
            model_name = model
        resolved = resolve_reranker(
            owner="ModelPortRerank",
            model=model_name,
            worker=worker,
            registry=registry,
            base_url=base_url,
            api_key=api_key,
        )
        fields: dict[str, Any] = {
            "model_name": model_name or type(resolved).__name__,
            "top_n": top_n,
            "base_url": base_url,
        }
        super().__init__(**fields, **kwargs)
        self._worker = resolved

    @classmethod
    def class_name(cls) -> str:
        """The name LlamaIndex serialises this class under."""
        return "ModelPortRerank"

    def _request(self, nodes: list[NodeWithScore], query_bundle: QueryBundle) -> RerankRequest:
        texts = [n.node.get_content(metadata_mode=MetadataMode.EMBED) for n in nodes]
        return RerankRequest(query_bundle.query_str, texts)

    def _payload(self, nodes: list[NodeWithScore], query_bundle: QueryBundle) -> dict[str, Any]:
        return {
            EventPayload.NODES: nodes,
            EventPayload.MODEL_NAME: self.model_name,
            EventPayload.QUERY_STR: query_bundle.query_str,
            EventPayload.TOP_K: self.top_n,
        }

    def _ranked(self, nodes: list[NodeWithScore], result: RerankResult) -> list[NodeWithScore]:
        out = []
        for i in result.ranking(self.top_n):
            node = nodes[i]
            if self.keep_retrieval_score:
                node.node.metadata["retrieval_score"] = node.score
            out.append(NodeWithScore(node=node.node, score=result.scores[i]))
        return out

    def _start(self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None) -> QueryBundle:
        dispatcher.event(
            ReRankStartEvent(query=query_bundle, nodes=nodes, top_n=self.top_n, model_name=self.model_name)
        )
        if query_bundle is None:
            raise ValueError("ModelPortRerank needs the query (a query bundle)")
        return query_bundle

    def _postprocess_nodes(
        self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None = None
    ) -> list[NodeWithScore]:
        query_bundle = self._start(nodes, query_bundle)
        if not nodes:
            dispatcher.event(ReRankEndEvent(nodes=[]))
            return []
        with self.callback_manager.event(CBEventType.RERANKING, payload=self._payload(nodes, query_bundle)) as event:
            ranked = self._ranked(nodes, self._worker.score(self._request(nodes, query_bundle)))
            event.on_end(payload={EventPayload.NODES: ranked})
        dispatcher.event(ReRankEndEvent(nodes=ranked))
        return ranked

    async def _apostprocess_nodes(
        self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None = None
    ) -> list[NodeWithScore]:
        query_bundle = self._start(nodes, query_bundle)
        if not nodes:
            dispatcher.event(ReRankEndEvent(nodes=[]))
            return []
        with self.callback_manager.event(CBEventType.RERANKING, payload=self._payload(nodes, query_bundle)) as event:
            ranked = self._ranked(nodes, await self._worker.ascore(self._request(nodes, query_bundle)))
            event.on_end(payload={EventPayload.NODES: ranked})
        dispatcher.event(ReRankEndEvent(nodes=ranked))
        return ranked
