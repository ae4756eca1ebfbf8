"""The ``anthropic`` kind: chat through Anthropic's Messages API, or any server that speaks it."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import aclosing
from dataclasses import replace
from typing import Any

import httpx

from modelport.core.errors import BadRequestError
from modelport.core.events import StreamEvent
from modelport.core.request import ChatRequest
from modelport.workers.remote.anthropic_format import (
    ANTHROPIC_VERSION,
    MessageDecoder,
    map_anthropic_error,
    message_events,
    messages_body,
)
from modelport.workers.remote.base import REMOTE_CAPABILITIES, RemoteChatWorker, capabilities_from
from modelport.workers.remote.http import HttpClient
from modelport.workers.remote.retry import RetryPolicy
from modelport.workers.remote.secret import Secret

__all__ = ["AnthropicWorker"]

ANTHROPIC_BASE_URL = "https://api.anthropic.com/v1"

# The Messages API has no logprobs, no seed and no embeddings; JSON schemas go through tools.
_CAPABILITIES = replace(
    REMOTE_CAPABILITIES,
    embeddings=False,
    logprobs=False,
    structured_output=False,
    sampling=frozenset({"top_k"}),
)


class AnthropicWorker(RemoteChatWorker):
    """Chat over ``POST {base_url}/messages``: Claude, or a server with Anthropic's API (modelport's own).

    Tools, tool_choice (``required`` becomes ``any``), images, stop sequences and reasoning carry
    over; ``reasoning_effort`` becomes a thinking budget. Usage counts cached prompt reads.

    Args:
        model: e.g. ``claude-sonnet-4-5``.
        base_url: The API root, ending in ``/v1``. Defaults to ``ANTHROPIC_BASE_URL`` from the
            environment (with ``/v1`` added), else Anthropic's.
        api_key: The key (sent as ``x-api-key``); when omitted it is read from ``api_key_env``.
        api_key_env: The environment variable holding the key.
        max_tokens: The output limit asked for when a request sets none (the API requires one).
        anthropic_version: The ``anthropic-version`` header.
        betas: Beta features to ask for (the ``anthropic-beta`` header).
        headers: Extra headers for every request.
        streaming: Stream events (the default); ``False`` asks for whole messages.
        timeout: Seconds to wait to connect and for each read, the first byte included.
        max_retries: Retries on throttling, overload (529), 5xx, timeouts and connection errors.
        retry_timeout: No retry starts after this many seconds.
        capabilities: Overrides of what the model can do.
        transport: A custom httpx transport (proxies, tests).
        async_transport: The same for the async client.
    """

    capabilities = _CAPABILITIES

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | Secret | None = None,
        api_key_env: str | None = "ANTHROPIC_API_KEY",
        max_tokens: int = 4096,
        anthropic_version: str = ANTHROPIC_VERSION,
        betas: list[str] | None = None,
        headers: Mapping[str, str] | None = None,
        streaming: bool = True,
        timeout: float = 60.0,
        max_retries: int = 2,
        retry_timeout: float = 60.0,
        capabilities: Mapping[str, Any] | None = None,
        transport: httpx.BaseTransport | None = None,
        async_transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not model:
            raise BadRequestError("the anthropic kind needs a model name", param="model")
        if max_tokens < 1:
            raise BadRequestError("must be a positive integer", param="max_tokens")
        from_env = os.environ.get("ANTHROPIC_BASE_URL")
        url = base_url or (f"{from_env.rstrip('/')}/v1" if from_env else ANTHROPIC_BASE_URL)
        secret = Secret.resolve(api_key, api_key_env, required=url == ANTHROPIC_BASE_URL, what=f"the model {model!r}")
        self.model = model
        self.max_tokens = max_tokens
        self.streaming = streaming
        self.capabilities = capabilities_from(_CAPABILITIES, capabilities)
        sent = {"anthropic-version": anthropic_version, **(headers or {})}
        if betas:
            sent["anthropic-beta"] = ",".join(betas)
        self.client = HttpClient(
            base_url=url,
            secret=secret,
            key_header="x-api-key",
            headers=sent,
            timeout=timeout,
            retry=RetryPolicy(max_retries=max_retries, total_timeout=retry_timeout),
            map_error=map_anthropic_error,
            name="anthropic",
            transport=transport,
            async_transport=async_transport,
        )

    def _body(self, request: ChatRequest) -> dict[str, Any]:
        self.check_request(request)
        return messages_body(request, model=self.model, max_tokens=self.max_tokens, stream=self.streaming)

    def stream(self, request: ChatRequest) -> Iterator[StreamEvent]:
        """Streams the answer; a failure after the first delta raises after what was delivered."""
        decoder = MessageDecoder(self.client.scrub) if self.streaming else None
        yield from self._events("messages", self._body(request), decoder, message_events)

    async def astream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:  # type: ignore[override]
        """Streams the answer with ``httpx.AsyncClient``; no thread is involved."""
        decoder = MessageDecoder(self.client.scrub) if self.streaming else None
        # Closed with this generator, so a client that leaves closes the upstream stream at once.
        async with aclosing(self._aevents("messages", self._body(request), decoder, message_events)) as events:
            async for event in events:
                yield event
