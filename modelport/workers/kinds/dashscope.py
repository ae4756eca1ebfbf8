"""The ``dashscope`` kind: Alibaba Cloud Model Studio (Qwen) through DashScope's native HTTP API."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import replace
from typing import Any

import httpx

from modelport.core.errors import BadRequestError, ContentFilteredError, UpstreamUnavailableError
from modelport.core.events import Finish, StreamEvent
from modelport.core.request import ChatRequest, EmbeddingRequest
from modelport.core.rerank import RerankRequest
from modelport.workers.remote.base import REMOTE_CAPABILITIES, RemoteWorker, capabilities_from
from modelport.workers.remote.dashscope_format import (
    EMBEDDING_PATH,
    GENERATION_PATH,
    REGIONS,
    RERANK_PATH,
    DashScopeDecoder,
    chat_body,
    decode_embeddings,
    decode_text_rerank,
    embedding_body,
    map_dashscope_error,
    text_rerank_body,
    to_openai_chunk,
)
from modelport.workers.remote.http import HttpClient
from modelport.workers.remote.openai_format import ChunkDecoder
from modelport.workers.remote.retry import RetryPolicy
from modelport.workers.remote.secret import Secret

# Streamed answers need X-DashScope-SSE; without it the API answers whole.
_SSE_HEADERS: Mapping[str, str] = {"X-DashScope-SSE": "enable", "Accept": "text/event-stream"}

__all__ = ["DashScopeWorker"]

# The native text-generation endpoint takes text only (images go to another endpoint).
_CAPABILITIES = replace(REMOTE_CAPABILITIES, vision=False)
# Texts per embeddings request that DashScope accepts: 25 for v1/v2, 10 from v3 on.
_EMBEDDING_BATCH = {"text-embedding-v1": 25, "text-embedding-v2": 25}


class DashScopeWorker(RemoteWorker):
    """Qwen chat and text embeddings over DashScope's native API.

    Args:
        model: e.g. ``qwen-plus``, ``qwen3-max`` or ``text-embedding-v4``.
        region: ``cn`` (Beijing) or ``intl`` (Singapore); ignored when ``base_url`` is set.
        base_url: The API root, ending in ``/api/v1``. Defaults to ``DASHSCOPE_HTTP_BASE_URL``
            from the environment, else the region's.
        api_key: The key; when omitted it is read from ``api_key_env``.
        api_key_env: The environment variable holding the key.
        enable_thinking: Ask hybrid-thinking models to reason; reasoning arrives as reasoning deltas.
        streaming: Stream with SSE (the default); ``False`` asks for whole answers.
        headers: Extra headers for every request.
        timeout: Seconds to wait to connect and for each read, the first byte included.
        max_retries: Retries on throttling, 5xx, timeouts and connection errors.
        retry_timeout: No retry starts after this many seconds.
        embedding_batch_size: Texts per embeddings request; by default DashScope's limit for the model.
        rerank: A text-rerank model (``gte-rerank-v2``): score documents through DashScope's
            native text-rerank API rather than by the cosine of embeddings.
        capabilities: Overrides of what the model can do.
        transport: A custom httpx transport (proxies, tests).
        async_transport: The same for the async client.
    """

    capabilities = _CAPABILITIES

    def __init__(
        self,
        model: str,
        *,
        region: str = "cn",
        base_url: str | None = None,
        api_key: str | Secret | None = None,
        api_key_env: str | None = "DASHSCOPE_API_KEY",
        enable_thinking: bool | None = None,
        streaming: bool = True,
        headers: Mapping[str, str] | None = None,
        timeout: float = 60.0,
        max_retries: int = 2,
        retry_timeout: float = 60.0,
        embedding_batch_size: int | None = None,
        rerank: bool = False,
        capabilities: Mapping[str, Any] | None = None,
        transport: httpx.BaseTransport | None = None,
        async_transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not model:
            raise BadRequestError("the dashscope kind needs a model name", param="model")
        if region not in REGIONS:
            raise BadRequestError(f"unknown region {region!r}; known: {sorted(REGIONS)}", param="region")
        url = base_url or os.environ.get("DASHSCOPE_HTTP_BASE_URL") or REGIONS[region]
        self.model = model
        self.enable_thinking = enable_thinking
        self.streaming = streaming
        self.embedding_batch_size = embedding_batch_size or _EMBEDDING_BATCH.get(model, 10)
        self.capabilities = capabilities_from(_CAPABILITIES, capabilities)
        if not isinstance(rerank, bool):
            raise BadRequestError(f"must be true or false, got {rerank!r}", param="rerank")
        self.rerank_path = RERANK_PATH if rerank else None
        self.client = HttpClient(
            base_url=url,
            secret=Secret.resolve(api_key, api_key_env, required=True, what=f"the DashScope model {model!r}"),
            headers=headers,
            timeout=timeout,
            retry=RetryPolicy(max_retries=max_retries, total_timeout=retry_timeout),
            map_error=map_dashscope_error,
            name="dashscope",
            transport=transport,
            async_transport=async_transport,
        )

    def _body(self, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        self.check_request(request)
        body = chat_body(request, model=self.model, stream=stream)
        if self.enable_thinking is not None:
            body["parameters"].setdefault("enable_thinking", self.enable_thinking)
        return body

    def stream(self, request: ChatRequest) -> Iterator[StreamEvent]:
        """Streams incrementally; a data-inspection refusal ends with finish reason ``content_filter``."""
        if not self.streaming:
            yield from self._whole(request)
            return
        body = self._body(request, stream=True)
        decoder = DashScopeDecoder(self.client.scrub)
        try:
            with self.client.stream_lines(GENERATION_PATH, body, _SSE_HEADERS) as lines:
                for line in lines:
                    yield from decoder.feed_line(line)
            yield from decoder.finish()
        except ContentFilteredError:
            yield Finish("content_filter")

    async def astream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:  # type: ignore[override]
        """Streams natively async."""
        if not self.streaming:
            try:
                data = await self.client.apost_json(GENERATION_PATH, self._body(request, stream=False))
            except ContentFilteredError:
                yield Finish("content_filter")
                return
            for event in self._events_of(data):
                yield event
            return
        body = self._body(request, stream=True)
        decoder = DashScopeDecoder(self.client.scrub)
        try:
            async with self.client.astream_lines(GENERATION_PATH, body, _SSE_HEADERS) as lines:
                async for line in lines:
                    for event in decoder.feed_line(line):
                        yield event
            for event in decoder.finish():
                yield event
        except ContentFilteredError:
            yield Finish("content_filter")

    def _events_of(self, data: Any) -> Iterator[StreamEvent]:
        if not isinstance(data, Mapping):
            raise UpstreamUnavailableError("the DashScope answer is not a JSON object")
        decoder = ChunkDecoder(self.client.scrub)
        yield from decoder.feed_chunk(to_openai_chunk(data))
        yield from decoder.finish()

    def _whole(self, request: ChatRequest) -> Iterator[StreamEvent]:
        try:
            data = self.client.post_json(GENERATION_PATH, self._body(request, stream=False))
        except ContentFilteredError:
            yield Finish("content_filter")
            return
        yield from self._events_of(data)

    # -- embeddings ---------------------------------------------------------------------------

    # DashScope's native API documents no model listing to probe: passive checks only.
    health_path = None
    embeddings_path = EMBEDDING_PATH

    def _rerank_body(self, request: RerankRequest) -> dict[str, Any]:
        return text_rerank_body(request, model=self.model)

    def _rerank_answer(self, data: Any, expected: int) -> tuple[list[float], int]:
        return decode_text_rerank(data, expected)

    def _embedding_body(self, texts: list[str], request: EmbeddingRequest) -> dict[str, Any]:
        return embedding_body(texts, model=self.model, dimensions=request.dimensions, input_type=request.input_type)

    def _embedding_answer(self, data: Any, expected: int) -> tuple[list[list[float]], int]:
        return decode_embeddings(data, expected)
