"""``ModelPortEmbeddings``: any modelport embedding worker as LangChain ``Embeddings``."""

from __future__ import annotations

from typing import Any

from langchain_core.embeddings import Embeddings
from pydantic import BaseModel, ConfigDict, Field, model_validator

from modelport.core import EmbeddingRequest
from modelport.workers import EmbeddingWorker, ModelRegistry, default_registry

__all__ = ["ModelPortEmbeddings"]


class ModelPortEmbeddings(BaseModel, Embeddings):
    """LangChain embeddings backed by a modelport worker.

    Example:
        >>> ModelPortEmbeddings(model="minilm-l6").embed_query("hello")[:3]
    """

    model: str = ""
    worker: EmbeddingWorker | None = Field(default=None, exclude=True)
    registry: ModelRegistry | None = Field(default=None, exclude=True)
    dimensions: int | None = None
    normalize: bool = True
    truncate: bool = True
    """Cut inputs longer than the model's limit to fit, as sentence-transformers does."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    @model_validator(mode="after")
    def _resolve_worker(self) -> ModelPortEmbeddings:
        if self.worker is None:
            if not self.model:
                raise ValueError("ModelPortEmbeddings needs a model name or a worker")
            self.worker = (self.registry or default_registry()).embedder(self.model)
        return self

    def _request(self, texts: list[str], input_type: Any) -> EmbeddingRequest:
        return EmbeddingRequest(
            texts, input_type=input_type, dimensions=self.dimensions, normalize=self.normalize, truncate=self.truncate
        )

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embeds documents."""
        assert self.worker is not None
        return self.worker.embed(self._request(texts, "document")).vectors

    def embed_query(self, text: str) -> list[float]:
        """Embeds one query."""
        assert self.worker is not None
        return self.worker.embed(self._request([text], "query")).vectors[0]

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embeds documents without blocking the event loop."""
        assert self.worker is not None
        return (await self.worker.aembed(self._request(texts, "document"))).vectors

    async def aembed_query(self, text: str) -> list[float]:
        """Embeds one query without blocking the event loop."""
        assert self.worker is not None
        return (await self.worker.aembed(self._request([text], "query"))).vectors[0]
