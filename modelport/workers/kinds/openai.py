"""The ``openai`` kind: OpenAI, or any server that speaks its API (vLLM, llama.cpp, Ollama, modelport)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import aclosing
from typing import Any

import httpx

from modelport.core.errors import BadRequestError
from modelport.core.events import StreamEvent
from modelport.core.request import ChatRequest, EmbeddingRequest
from modelport.core.rerank import RerankRequest
from modelport.workers.remote.base import REMOTE_CAPABILITIES, RemoteWorker, capabilities_from
from modelport.workers.remote.http import HttpClient
from modelport.workers.remote.openai_format import (
    ChunkDecoder,
    chat_body,
    decode_embeddings,
    map_openai_error,
    response_events,
)
from modelport.workers.remote.rerank_format import decode_rerank, rerank_body
from modelport.workers.remote.retry import RetryPolicy
from modelport.workers.remote.secret import Secret

__all__ = ["OPENAI_BASE_URL", "OpenAIWorker"]

OPENAI_BASE_URL = "https://api.openai.com/v1"


class OpenAIWorker(RemoteWorker):
    """Chat and embeddings through an OpenAI-compatible HTTP API, sync and natively async.

    Args:
        model: The model name the server knows.
        base_url: The API root (ending in ``/v1`` for most servers). Defaults to
            ``OPENAI_BASE_URL`` from the environment, else OpenAI's.
        api_key: The key; when omitted it is read from ``api_key_env``. Only
            OpenAI's own URL requires one.
        api_key_env: The environment variable holding the key.
        headers: Extra headers for every request.
        timeout: Seconds to wait to connect and for each read, the first byte included.
        max_retries: Retries on 429, 5xx, timeouts and connection errors.
        retry_timeout: No retry starts after this many seconds.
        streaming: Ask for SSE streams (the default); ``False`` asks for whole answers.
        stream_usage: Ask for usage in streams (``stream_options.include_usage``).
        max_tokens_field: ``max_tokens``, or ``max_completion_tokens`` for OpenAI's reasoning models.
        embedding_encoding: ``base64`` (compact; the default) or ``float``.
        embedding_batch_size: Inputs per ``/embeddings`` request.
        rerank: Score documents through the server's rerank endpoint (vLLM, llama.cpp, Jina,
            Cohere and modelport share its shape); otherwise by the cosine of embeddings.
        rerank_path: That endpoint, relative to ``base_url`` (``rerank``; Cohere's v2 API
            takes ``v2/rerank`` under its root).
        capabilities: Overrides of what the remote model can do (all on by default).
        transport: A custom httpx transport (proxies, tests).
        async_transport: The same for the async client.
    """

    capabilities = REMOTE_CAPABILITIES

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | Secret | None = None,
        api_key_env: str | None = "OPENAI_API_KEY",
        headers: Mapping[str, str] | None = None,
        timeout: float = 60.0,
        max_retries: int = 2,
        retry_timeout: float = 60.0,
        streaming: bool = True,
        stream_usage: bool = True,
        max_tokens_field: str = "max_tokens",
        embedding_encoding: str = "base64",
        embedding_batch_size: int = 256,
        rerank: bool = False,
        rerank_path: str = "rerank",
        capabilities: Mapping[str, Any] | None = None,
        transport: httpx.BaseTransport | None = None,
        async_transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not model:
            raise BadRequestError("the openai kind needs a model name", param="model")
        if embedding_encoding not in ("base64", "float"):
            raise BadRequestError("must be 'base64' or 'float'", param="embedding_encoding")
        if embedding_batch_size < 1:
            raise BadRequestError("must be a positive integer", param="embedding_batch_size")
        url = base_url or os.environ.get("OPENAI_BASE_URL") or OPENAI_BASE_URL
        secret = Secret.resolve(api_key, api_key_env, required=url == OPENAI_BASE_URL, what=f"the model {model!r}")
        self.model = model
        self.streaming = streaming
        self.stream_usage = stream_usage
        self.max_tokens_field = max_tokens_field
        self.embedding_encoding = embedding_encoding
        self.embedding_batch_size = embedding_batch_size
        if not isinstance(rerank, bool):
            raise BadRequestError(f"must be true or false, got {rerank!r}", param="rerank")
        self.rerank_path = rerank_path.lstrip("/") if rerank else None
        self.capabilities = capabilities_from(REMOTE_CAPABILITIES, capabilities)
        self.client = HttpClient(
            base_url=url,
            secret=secret,
            headers=headers,
            timeout=timeout,
            retry=RetryPolicy(max_retries=max_retries, total_timeout=retry_timeout),
            map_error=map_openai_error,
            name="openai",
            transport=transport,
            async_transport=async_transport,
        )

    # -- chat ---------------------------------------------------------------------------------

    def _body(self, request: ChatRequest) -> dict[str, Any]:
        self.check_request(request)
        return chat_body(
            request,
            model=self.model,
            stream=self.streaming,
            stream_usage=self.stream_usage,
            max_tokens_field=self.max_tokens_field,
        )

    def stream(self, request: ChatRequest) -> Iterator[StreamEvent]:
        """Streams the answer; a failure after the first delta raises after what was delivered."""
        decoder = ChunkDecoder(self.client.scrub) if self.streaming else None
        yield from self._events("chat/completions", self._body(request), decoder, response_events)

    async def astream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:  # type: ignore[override]
        """Streams the answer with ``httpx.AsyncClient``; no thread is involved."""
        decoder = ChunkDecoder(self.client.scrub) if self.streaming else None
        # Closed with this generator, so a client that leaves closes the upstream stream at once.
        async with aclosing(self._aevents("chat/completions", self._body(request), decoder, response_events)) as events:
            async for event in events:
                yield event

    # -- rerank -------------------------------------------------------------------------------

    def _rerank_body(self, request: RerankRequest) -> dict[str, Any]:
        return rerank_body(request, model=self.model)

    def _rerank_answer(self, data: Any, expected: int) -> tuple[list[float], int]:
        return decode_rerank(data, expected)

    # -- embeddings ---------------------------------------------------------------------------

    embeddings_path = "embeddings"

    def _embedding_body(self, texts: list[str], request: EmbeddingRequest) -> dict[str, Any]:
        # Always text, never token-id arrays: many compatible servers reject those.
        body: dict[str, Any] = {"model": self.model, "input": texts, "encoding_format": self.embedding_encoding}
        if request.dimensions is not None:
            body["dimensions"] = request.dimensions
        return body

    def _embedding_answer(self, data: Any, expected: int) -> tuple[list[list[float]], int]:
        return decode_embeddings(data, expected)
