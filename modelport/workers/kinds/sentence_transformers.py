"""The ``sentence-transformers`` kind: embeddings from any SentenceTransformer model."""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from typing import Any

from modelport.core.capabilities import Capabilities
from modelport.core.errors import BadRequestError
from modelport.core.request import EmbeddingRequest, EmbeddingResult, token_upper_bound
from modelport.workers.base import EmbeddingWorker
from modelport.workers.engines.sentence_transformers import SentenceTransformersEngine
from modelport.workers.model_files import check_path, resolve_path

__all__ = ["SentenceTransformersWorker"]


class SentenceTransformersWorker(EmbeddingWorker):
    """Embeds texts with ``SentenceTransformer.encode``.

    Args:
        model: A hub id, a local folder, or ``package:NAME/path``.
        device: Torch device; the library picks one when omitted.
        batch_size: Texts per forward pass.
        query_prompt: Prompt name (or literal prompt) for queries, when the model has one.
        document_prompt: Prompt name (or literal prompt) for documents.
        trust_remote_code: Allow custom model code; off unless asked for.
        max_batch_texts: Texts that concurrent calls may merge into one ``encode`` call.
        batch_wait_s: How long the first call of a batch waits for others to join it.
    """

    @classmethod
    def check_params(cls, params: Mapping[str, Any]) -> None:
        """Checks that a local ``model`` folder (or package) exists; hub ids are left to loading."""
        check_path(params.get("model"), param="model", local_only=True)

    @staticmethod
    def prepare() -> None:
        """Imports the libraries a load needs: they stay with the process, not with one model."""
        import sentence_transformers  # noqa: F401
        import torch  # noqa: F401

    @staticmethod
    def estimate_footprint(params: Mapping[str, Any]) -> int:
        """Bytes it will hold: its safetensors weights as stored, plus 10%."""
        from modelport.workers.residency.footprint import safetensors_parameters, torch_model_bytes

        return torch_model_bytes(*safetensors_parameters(resolve_path(str(params["model"]))), "auto")

    def __init__(
        self,
        model: str,
        *,
        device: str | None = None,
        batch_size: int = 32,
        query_prompt: str | None = None,
        document_prompt: str | None = None,
        trust_remote_code: bool = False,
        max_batch_texts: int = 256,
        batch_wait_s: float = 0.005,
    ) -> None:
        from sentence_transformers import SentenceTransformer

        path = resolve_path(model)
        self.model: Any = SentenceTransformer(
            str(path) if path.exists() else model, device=device, trust_remote_code=trust_remote_code
        )
        self.batch_size = batch_size
        prompts: dict[str, str] = dict(getattr(self.model, "prompts", None) or {})
        # Use the model's own query/document prompts unless the entry names others.
        self._prompts = {
            "query": query_prompt or ("query" if "query" in prompts else None),
            "document": document_prompt
            or ("document" if "document" in prompts else "passage" if "passage" in prompts else None),
        }
        self._known_prompts = prompts
        dimension = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        self.dimensions = int(dimension())
        # Concurrent calls merge into one encode, so the server may let this many in at once.
        self.parallelism = max_batch_texts
        self._batcher = SentenceTransformersEngine(
            self._encode, max_batch_texts=max_batch_texts, batch_wait_s=batch_wait_s
        )
        # Stopped at interpreter exit too, before torch's C++ statics are destroyed.
        self._finalizer = weakref.finalize(self, self._batcher.close)
        self.capabilities = Capabilities(
            chat=False,
            embeddings=True,
            rerank=True,
            max_context=int(getattr(self.model, "max_seq_length", 0) or 0) or None,
            embedding_dimensions=self.dimensions,
        )

    def _check(self, request: EmbeddingRequest) -> str | None:
        if request.dimensions is not None and request.dimensions > self.dimensions:
            raise BadRequestError(
                f"this model has {self.dimensions} dimensions; {request.dimensions} were asked for",
                param="dimensions",
            )
        limit = getattr(self.model, "max_seq_length", None)
        if request.truncate or not limit:
            return self._prompts.get(request.input_type) if request.input_type else None
        # Only texts that could pass the limit are tokenized here; encoding tokenizes them anyway.
        long = [i for i, text in enumerate(request.texts) if token_upper_bound(text) > limit]
        if long:
            counts = self._count_tokens([request.texts[i] for i in long], truncate=False)
            for i, tokens in zip(long, counts, strict=True):
                if tokens > limit:
                    raise BadRequestError(
                        f"this input has {tokens} tokens; the model takes {limit} at most "
                        "(send truncate: true to cut it to fit)",
                        param=f"input[{i}]",
                        code="context_length_exceeded",
                    )
        return self._prompts.get(request.input_type) if request.input_type else None

    def embed(self, request: EmbeddingRequest) -> EmbeddingResult:
        """Embeds the texts (batched with concurrent calls), truncating and normalising as asked."""
        prompt = self._check(request)
        if not request.texts:
            return EmbeddingResult([], 0)
        vectors, tokens = self._batcher.submit(request, prompt).result()
        return self._finish(request, vectors, tokens)

    async def aembed(self, request: EmbeddingRequest) -> EmbeddingResult:
        """Embeds without blocking the event loop, batched with concurrent calls."""
        import asyncio

        prompt = self._check(request)
        if not request.texts:
            return EmbeddingResult([], 0)
        vectors, tokens = await asyncio.wrap_future(self._batcher.submit(request, prompt))
        return self._finish(request, vectors, tokens)

    def _finish(self, request: EmbeddingRequest, vectors: Any, tokens: int) -> EmbeddingResult:
        import numpy as np

        if request.dimensions is not None:
            vectors = vectors[:, : request.dimensions]
        if request.normalize:
            vectors = vectors / np.clip(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12, None)
        return EmbeddingResult(vectors.tolist(), tokens)

    def _encode(self, texts: list[str], prompt: str | None) -> tuple[Any, list[int]]:
        """Raw vectors for ``texts`` (one ``encode`` call) and each text's token count."""
        kwargs: dict[str, Any] = {
            "batch_size": self.batch_size,
            "normalize_embeddings": False,
            "convert_to_numpy": True,
            "show_progress_bar": False,
        }
        if prompt is not None:
            kwargs["prompt_name" if prompt in self._known_prompts else "prompt"] = prompt
        return self.model.encode(texts, **kwargs), self._count_tokens(texts)

    def count_tokens(self, text: str) -> int:
        """Tokens ``text`` holds, special tokens included and nothing cut."""
        return self._count_tokens([text], truncate=False)[0]

    def close(self) -> None:
        """Stops the batching thread."""
        self._finalizer()

    def _count_tokens(self, texts: Any, *, truncate: bool = True) -> list[int]:
        tokenizer = getattr(self.model, "tokenizer", None)
        if tokenizer is None:
            return [0] * len(texts)
        limit = getattr(self.model, "max_seq_length", None) if truncate else None
        ids = tokenizer(list(texts), add_special_tokens=True, truncation=limit is not None, max_length=limit)
        return [len(x) for x in ids["input_ids"]]
