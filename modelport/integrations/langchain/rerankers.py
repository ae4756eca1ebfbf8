"""Reranking in LangChain: ``ModelPortReranker`` (a document compressor) and ``ModelPortCrossEncoder``.

``ModelPortReranker`` goes where LangChain takes a ``BaseDocumentCompressor``, such as a
``ContextualCompressionRetriever``; ``ModelPortCrossEncoder`` implements ``BaseCrossEncoder`` for
``CrossEncoderReranker``. Both score with a modelport reranker in this process (by model name)
or, given ``base_url``, through any server's ``/v1/rerank``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_classic.retrievers.document_compressors.cross_encoder import BaseCrossEncoder
from langchain_core.callbacks import Callbacks
from langchain_core.documents import BaseDocumentCompressor, Document
from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from modelport.core.rerank import RerankRequest, RerankResult
from modelport.integrations.rerank_source import group_pairs, resolve_reranker
from modelport.workers import ModelRegistry, RerankWorker

__all__ = ["ModelPortCrossEncoder", "ModelPortReranker"]


class _RerankerFields(BaseModel):
    """The fields both classes share, and the worker they resolve to."""

    model: str = ""
    """The model that scores: any reranker, embedder or local chat model of the registry."""
    worker: RerankWorker | None = Field(default=None, exclude=True)
    registry: ModelRegistry | None = Field(default=None, exclude=True)
    base_url: str | None = None
    """A server's API root (``http://host:8000/v1``): score through its ``/rerank`` instead."""
    api_key: SecretStr | None = None

    model_config = ConfigDict(arbitrary_types_allowed=True)

    @model_validator(mode="after")
    def _resolve_worker(self) -> Any:
        self.worker = resolve_reranker(
            owner=type(self).__name__,
            model=self.model,
            worker=self.worker,
            registry=self.registry,
            base_url=self.base_url,
            api_key=self.api_key.get_secret_value() if self.api_key else None,
        )
        return self

    def _reranker(self) -> RerankWorker:
        assert self.worker is not None
        return self.worker


class ModelPortReranker(_RerankerFields, BaseDocumentCompressor):
    """Keeps the ``top_n`` documents most relevant to the query, best first.

    Each kept document is a copy with its score in ``metadata["relevance_score"]``, as
    LangChain's Cohere reranker writes it.

    Example:
        >>> ModelPortReranker(model="minilm-l6", top_n=3).compress_documents(docs, "my question")
    """

    top_n: int | None = 3
    """Documents kept; ``None`` keeps them all, reordered."""

    def _ranked(self, documents: Sequence[Document], result: RerankResult) -> list[Document]:
        return [
            Document(
                page_content=documents[i].page_content,
                metadata={**documents[i].metadata, "relevance_score": result.scores[i]},
                id=documents[i].id,
            )
            for i in result.ranking(self.top_n)
        ]

    def compress_documents(
        self, documents: Sequence[Document], query: str, callbacks: Callbacks | None = None
    ) -> Sequence[Document]:
        """The ``top_n`` documents by relevance to ``query``."""
        if not documents:
            return []
        request = RerankRequest(query, [d.page_content for d in documents])
        return self._ranked(documents, self._reranker().score(request))

    async def acompress_documents(
        self, documents: Sequence[Document], query: str, callbacks: Callbacks | None = None
    ) -> Sequence[Document]:
        """The same without blocking the event loop."""
        if not documents:
            return []
        request = RerankRequest(query, [d.page_content for d in documents])
        return self._ranked(documents, await self._reranker().ascore(request))


class ModelPortCrossEncoder(_RerankerFields, BaseCrossEncoder):
    """LangChain's ``BaseCrossEncoder`` on a modelport reranker, for ``CrossEncoderReranker``.

    Pairs that share a query are scored in one call.

    Example:
        >>> CrossEncoderReranker(model=ModelPortCrossEncoder(model="minilm-l6"), top_n=3)
    """

    def score(self, text_pairs: list[tuple[str, str]]) -> list[float]:
        """One score per ``(query, document)`` pair, in order."""
        requests, places = group_pairs(text_pairs)
        results = [self._reranker().score(r) for r in requests]
        return [results[r].scores[d] for r, d in places]
