"""``/v1/embeddings``: text in, float or base64 (little-endian float32) vectors out."""

from __future__ import annotations

import asyncio
import base64
import struct

from fastapi.responses import Response

from modelport.core.errors import BadRequestError
from modelport.core.request import MAX_EMBEDDING_INPUTS, EmbeddingRequest, token_upper_bound
from modelport.server import protocol as wire
from modelport.server.endpoints.base import Endpoint, count_text_tokens

__all__ = ["EmbeddingsEndpoint", "encode_base64"]


def encode_base64(vector: list[float]) -> str:
    """The official SDK's default format: the raw float32 bytes, little-endian, in base64."""
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")


def _texts(value: object) -> list[str]:
    if isinstance(value, list) and not value:
        raise BadRequestError("must not be empty", param="input")
    if isinstance(value, list) and not all(isinstance(v, str) for v in value):
        raise BadRequestError("token-id input is not supported; send text", param="input")
    texts = [value] if isinstance(value, str) else [str(v) for v in value] if isinstance(value, list) else []
    if len(texts) > MAX_EMBEDDING_INPUTS:
        raise BadRequestError(
            f"holds {len(texts)} inputs; one request takes {MAX_EMBEDDING_INPUTS} at most", param="input"
        )
    for i, text in enumerate(texts):
        if not text:
            raise BadRequestError(
                "must not be an empty string", param="input" if isinstance(value, str) else f"input[{i}]"
            )
    return texts


class EmbeddingsEndpoint(Endpoint, name="embeddings", id_prefix="emb"):
    """Embeds the input texts in order."""

    async def create(self, body: wire.EmbeddingRequest) -> Response:
        """The vectors, in the input's order, as floats or base64."""
        texts = _texts(body.input)
        self.record.inputs = len(texts)
        request = EmbeddingRequest(texts, dimensions=body.dimensions, truncate=body.truncate)
        worker = await self.embedder(self.model)
        limit = self.state.settings.max_embedding_tokens
        # Tokenized here only when the inputs could reach the cap at all; the worker counts again.
        fits = sum(token_upper_bound(text) for text in texts) <= limit
        tokens = 0 if fits else await asyncio.to_thread(count_text_tokens, worker, texts)
        if tokens > limit:
            raise BadRequestError(
                f"holds about {tokens} tokens; one request takes {limit} at most (server.max_embedding_tokens)",
                param="input",
            )
        slot = await self.slot(worker)
        try:
            result = await worker.aembed(request)
        finally:
            slot.release()
        self.record.prompt_tokens = result.prompt_tokens
        encode = encode_base64 if body.encoding_format == "base64" else (lambda v: v)
        return self.json(
            wire.EmbeddingResponse(
                data=[wire.EmbeddingData(index=i, embedding=encode(v)) for i, v in enumerate(result.vectors)],
                model=self.model,
                usage=wire.EmbeddingUsage(prompt_tokens=result.prompt_tokens, total_tokens=result.prompt_tokens),
            )
        )
