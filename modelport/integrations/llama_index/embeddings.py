"""``ModelPortEmbedding``: any modelport embedding worker as a LlamaIndex embedding model."""

from __future__ import annotations

from typing import Any

from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.bridge.pydantic import Field, PrivateAttr

from modelport.core import EmbeddingRequest
from modelport.workers import EmbeddingWorker, ModelRegistry, default_registry

__all__ = ["ModelPortEmbedding"]


class ModelPortEmbedding(BaseEmbedding):
    """Embeds queries and documents with a modelport worker, in batches, sync or async.

    Queries and documents are sent with their input type, for models that tell them apart.
    """

    dimensions: int | None = Field(default=None, description="Truncate vectors to this size.")
    normalize: bool = Field(default=True, description="Scale vectors to unit length.")
    truncate: bool = Field(default=True, description="Cut inputs longer than the model's limit to fit.")

    _worker: EmbeddingWorker = PrivateAttr()

    def __init__(
        self,
        model_name: str = "",
        *,
        model: str | None = None,
        worker: EmbeddingWorker | None = None,
        registry: ModelRegistry | None = None,
        **kwargs: Any,
    ) -> None:
        """Builds the embedding model.

        Args:
            model_name: The registered model to embed with.
            model: The same, by the name ``OpenAIEmbedding`` uses.
            worker: A worker to use directly instead of a registered one.
            registry: Where to look ``model_name`` up; the default registry when omitted.
            **kwargs: ``BaseEmbedding`` settings (``embed_batch_size``, ``dimensions``, ...).
        """
        if model is not None:
            if model_name and model_name != model:
                raise ValueError(f"model={model!r} and model_name={model_name!r} disagree; pass one of them")
            model_name = model
        if worker is None:
            if not model_name:
                raise ValueError("ModelPortEmbedding needs a model name or a worker")
            worker = (registry or default_registry()).embedder(model_name)
        super().__init__(model_name=model_name or type(worker).__name__, **kwargs)
        self._worker = worker

    @classmethod
    def class_name(cls) -> str:
        """The name LlamaIndex serialises this class under."""
        return "ModelPortEmbedding"

    def _request(self, texts: list[str], input_type: str) -> EmbeddingRequest:
        return EmbeddingRequest(
            texts,
            input_type=input_type,  # type: ignore[arg-type]
            dimensions=self.dimensions,
            normalize=self.normalize,
            truncate=self.truncate,
        )

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._worker.embed(self._request([query], "query")).vectors[0]

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return (await self._worker.aembed(self._request([query], "query"))).vectors[0]

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._worker.embed(self._request([text], "document")).vectors[0]

    async def _aget_text_embedding(self, text: str) -> list[float]:
        return (await self._worker.aembed(self._request([text], "document"))).vectors[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return self._worker.embed(self._request(texts, "document")).vectors

    async def _aget_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return (await self._worker.aembed(self._request(texts, "document"))).vectors
