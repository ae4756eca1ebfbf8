"""``/v1/embeddings``: text in, float or base64 (little-endian float32) vectors out."""

from __future__ import annotations

import base64
import struct

from fastapi.responses import Response

from modelport.core.errors import BadRequestError
from modelport.core.request import EmbeddingRequest
from modelport.server import protocol as wire
from modelport.server.endpoints.base import Endpoint

__all__ = ["EmbeddingsEndpoint", "encode_base64"]


def encode_base64(vector: list[float]) -> str:
    """The official SDK's default format: the raw float32 bytes, little-endian, in base64."""
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")


def _texts(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return [str(v) for v in value]
    if isinstance(value, list) and not value:
        raise BadRequestError("must not be empty", param="input")
    raise BadRequestError("token-id input is not supported; send text", param="input")


class EmbeddingsEndpoint(Endpoint, name="embeddings", id_prefix="emb"):
    """Embeds the input texts in order."""

    async def create(self, body: wire.EmbeddingRequest) -> Response:
        """The vectors, in the input's order, as floats or base64."""
        texts = _texts(body.input)
        self.record.inputs = len(texts)
        request = EmbeddingRequest(texts, dimensions=body.dimensions)
        worker = await self.embedder(body.model)
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
                model=body.model,
                usage=wire.EmbeddingUsage(prompt_tokens=result.prompt_tokens, total_tokens=result.prompt_tokens),
            )
        )
