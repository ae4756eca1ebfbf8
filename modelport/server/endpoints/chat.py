"""``/v1/chat/completions``: the wire request as a core ``ChatRequest``, the worker's events as chunks."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from fastapi.responses import Response

from modelport.core.errors import BadRequestError
from modelport.core.events import StreamEvent
from modelport.core.messages import message_from_dict
from modelport.core.request import ChatRequest, ResponseFormat
from modelport.core.tools import ToolSpec
from modelport.server import protocol as wire
from modelport.server.encoding import ChatChunkEncoder, chat_completion
from modelport.server.endpoints.base import Endpoint

__all__ = ["ChatEndpoint", "chat_request", "sampling_fields"]


def sampling_fields(body: wire.ChatCompletionRequest | wire.CompletionRequest) -> dict[str, Any]:
    """The optional sampling fields of a wire request, as ``ChatRequest`` keywords."""
    # Each worker refuses, by name, the fields its engine cannot honour (``check_request``).
    return {
        "frequency_penalty": body.frequency_penalty,
        "presence_penalty": body.presence_penalty,
        "repetition_penalty": body.repetition_penalty,
        "logit_bias": body.logit_bias,
        "top_k": body.top_k,
        "min_p": body.min_p,
    }


def chat_request(body: wire.ChatCompletionRequest) -> ChatRequest:
    """Validates the wire request into a core request, naming the offending field on failure."""
    messages = [message_from_dict(m, where=f"messages[{i}]") for i, m in enumerate(body.messages)]
    tools = [ToolSpec.from_dict(t, where=f"tools[{i}]") for i, t in enumerate(body.tools or ())]
    if body.tool_choice is not None and not tools and body.tool_choice != "none":
        raise BadRequestError("tool_choice is set but no tools were given", param="tool_choice")
    stop = [body.stop] if isinstance(body.stop, str) else list(body.stop or ())
    return ChatRequest(
        messages,
        temperature=body.temperature,
        top_p=body.top_p,
        max_tokens=body.max_completion_tokens if body.max_completion_tokens is not None else body.max_tokens,
        stop=stop,
        seed=body.seed,
        tools=tools,
        tool_choice=body.tool_choice,
        response_format=ResponseFormat.from_dict(body.response_format) if body.response_format else None,
        n=body.n,
        logprobs=bool(body.logprobs),
        top_logprobs=body.top_logprobs,
        parallel_tool_calls=body.parallel_tool_calls,
        tool_call_threshold=body.tool_call_threshold,
        reasoning_effort=body.reasoning_effort,
        cache_key=body.prompt_cache_key,
        **sampling_fields(body),
    )


class ChatEndpoint(Endpoint, name="chat", id_prefix="chatcmpl"):
    """Serves one chat completion, whole or as an SSE stream."""

    async def create(self, body: wire.ChatCompletionRequest) -> Response:
        """Translates ``body``, runs it, and answers in OpenAI's chat shapes."""
        request = chat_request(body)
        worker = await self.chat_worker(self.model)
        generation = await self.start(worker, request)
        if not body.stream:
            result = await self.whole(generation)
            return self.json(
                chat_completion(
                    result, id=self.response_id, model=self.model, created=self.created, with_logprobs=request.logprobs
                )
            )
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        encoder = ChatChunkEncoder(
            id=self.response_id, model=self.model, created=self.created, n=request.n, include_usage=include_usage
        )

        async def chunks(events: AsyncIterator[StreamEvent]) -> AsyncIterator[bytes]:
            yield encoder.start()
            async for event in events:
                yield encoder.encode(event)
            yield encoder.end()

        return self.stream(generation, chunks)
