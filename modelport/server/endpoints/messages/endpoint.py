"""``MessagesEndpoint``: Anthropic's ``POST /v1/messages`` and ``/v1/messages/count_tokens``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from fastapi.responses import JSONResponse, Response

from modelport.core.errors import BadRequestError, ModelPortError
from modelport.core.events import StreamEvent
from modelport.core.request import ChatRequest
from modelport.server.endpoints.base import Endpoint
from modelport.server.endpoints.messages import translate
from modelport.server.endpoints.messages.errors import error_event
from modelport.server.endpoints.messages.output import MessageBuilder, sse_event
from modelport.server.endpoints.messages.wire import CountTokensRequest, CreateMessage

__all__ = ["PING_S", "MessagesEndpoint"]

# How long a stream may stay silent before a ``ping`` (long prefills, slow tools).
PING_S = 5.0
# How long a stream waits for the model's first event before it starts with pings: errors
# found before then keep their status; Claude Code retries a request whose answer is silent.
FIRST_EVENT_S = 2.0
# The core's field names, as this API names them.
_PARAMS = {"max_tokens": "max_tokens", "stop": "stop_sequences", "messages": "messages"}


def _refuse_unsupported(body: CountTokensRequest) -> None:
    if body.mcp_servers:
        raise BadRequestError("MCP servers run on Anthropic's side; this server cannot", param="mcp_servers")
    if isinstance(body, CreateMessage) and body.container is not None:
        raise BadRequestError("containers belong to Anthropic's code execution tool", param="container")


def _request(body: CountTokensRequest) -> ChatRequest:
    messages = translate.messages_from_wire(body.system, body.messages)
    tools = translate.tools_from_wire(body.tools)
    choice, parallel = translate.tool_choice(body.tool_choice, tools)
    create = body if isinstance(body, CreateMessage) else None
    try:
        return ChatRequest(
            messages,
            max_tokens=create.max_tokens if create else None,
            stop=list(create.stop_sequences or ()) if create else (),
            temperature=create.temperature if create else None,
            top_p=create.top_p if create else None,
            top_k=create.top_k if create else None,
            tools=tools,
            tool_choice=choice,
            parallel_tool_calls=parallel,
            reasoning_effort=translate.reasoning_effort(body.thinking),
        )
    except BadRequestError as error:
        param = _PARAMS.get(error.param or "")
        if param is None or param == error.param:
            raise
        raise BadRequestError(error.message.replace(str(error.param), param), param=param) from None


async def _with_pings(events: AsyncIterator[StreamEvent], every: float) -> AsyncIterator[StreamEvent | None]:
    """``events``, with ``None`` wherever ``every`` seconds pass without one."""
    iterator = aiter(events)
    pending: asyncio.Future[StreamEvent] | None = None
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(anext(iterator))
            done, _ = await asyncio.wait({pending}, timeout=every)
            if not done:
                yield None
                continue
            try:
                event = pending.result()
            except StopAsyncIteration:
                return
            pending = None
            yield event
    finally:
        if pending is not None and not pending.done():
            pending.cancel()


class MessagesEndpoint(Endpoint, name="messages", id_prefix="msg"):
    """Serves one Messages request, whole or as a stream of Anthropic's events."""

    @property
    def response_id(self) -> str:
        """``msg_`` and the request id."""
        return f"msg_{self.record.id}"

    async def create(self, body: CreateMessage) -> Response:
        """Translates ``body``, runs it, and answers with a message or its events."""
        _refuse_unsupported(body)
        request = _request(body)
        worker = await self.chat_worker(self.model)
        builder = MessageBuilder(self.response_id, self.model, seal=self.state.sealer.seal)
        generation = await self.start(worker, request, first_within=FIRST_EVENT_S if body.stream else None)
        if not body.stream:
            await self.whole(generation.folded(builder.feed))
            builder.end()
            return JSONResponse(builder.message)

        async def chunks(events: AsyncIterator[StreamEvent]) -> AsyncIterator[bytes]:
            for event in builder.start():
                yield sse_event(event)
            async for item in _with_pings(events, PING_S):
                for event in builder.feed(item) if item is not None else [{"type": "ping"}]:
                    yield sse_event(event)
            for event in builder.end():
                yield sse_event(event)

        return self.stream(generation, chunks)

    def stream_error(self, error: ModelPortError) -> bytes:
        """Anthropic's ``error`` event (its streams have no ``[DONE]``)."""
        return error_event(error)

    async def count_tokens(self, body: CountTokensRequest) -> Response:
        """``POST /v1/messages/count_tokens``: the prompt's tokens, with the model's template and tools."""
        self.admit(body.model, endpoint="count_tokens")
        _refuse_unsupported(body)
        request = _request(body)
        worker = await self.chat_worker(self.model)
        counted = await asyncio.to_thread(worker.count_input_tokens, request)
        if counted is None:
            raise BadRequestError(f"the model {self.model!r} cannot count tokens here", param="model")
        return JSONResponse({"input_tokens": counted})
