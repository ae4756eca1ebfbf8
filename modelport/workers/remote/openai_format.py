"""OpenAI's chat and embeddings wire format, as a client speaks it.

Builds request bodies from core requests, folds streamed chunks (or a whole
response) into core events, and maps error bodies to the core errors.
"""

from __future__ import annotations

import base64
import json
import struct
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from modelport.core.errors import (
    AuthenticationError,
    BadRequestError,
    ModelNotFoundError,
    ModelPortError,
    RateLimitedError,
    TimeoutError,
    UpstreamUnavailableError,
)
from modelport.core.events import (
    Finish,
    FinishReason,
    ReasoningDelta,
    StreamEvent,
    TextDelta,
    TokenLogprob,
    Usage,
)
from modelport.core.messages import message_to_dict
from modelport.core.request import ChatRequest
from modelport.core.tools import NamedToolChoice
from modelport.workers.remote.http import HttpStatusError
from modelport.workers.remote.sse import SSEDecoder
from modelport.workers.remote.tool_deltas import ToolDeltaNormalizer

__all__ = [
    "ChunkDecoder",
    "chat_body",
    "decode_embeddings",
    "finish_reason",
    "map_openai_error",
    "request_options",
    "response_events",
    "tool_choice_to_wire",
    "usage_from_wire",
]

_FINISH_REASONS: Mapping[str, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
    "error": "error",
}


def finish_reason(value: Any) -> FinishReason:
    """Maps a wire finish reason to the core's; unknown values read as ``stop``."""
    return _FINISH_REASONS.get(str(value), "stop")


def tool_choice_to_wire(choice: Any) -> Any:
    """The normalised tool_choice in OpenAI's form."""
    if isinstance(choice, NamedToolChoice):
        return {"type": "function", "function": {"name": choice.name}}
    return choice


def request_options(request: ChatRequest, *, max_tokens_field: str = "max_tokens") -> dict[str, Any]:
    """Sampling, format and tool fields, named as both OpenAI's body and DashScope's parameters name them."""
    optional: dict[str, Any] = {
        "temperature": request.temperature,
        "top_p": request.top_p,
        max_tokens_field: request.max_tokens,
        "seed": request.seed,
        "stop": list(request.stop) or None,
        "n": request.n if request.n != 1 else None,
        "logprobs": True if request.logprobs else None,
        "top_logprobs": request.top_logprobs if request.logprobs else None,
        "response_format": request.response_format.to_dict() if request.response_format else None,
        # Passed through as set: the upstream applies them, or refuses them itself.
        "frequency_penalty": request.frequency_penalty,
        "presence_penalty": request.presence_penalty,
        "repetition_penalty": request.repetition_penalty,
        "top_k": request.top_k,
        "min_p": request.min_p,
        "logit_bias": {str(k): v for k, v in request.logit_bias.items()} if request.logit_bias else None,
    }
    options = {k: v for k, v in optional.items() if v is not None}
    if request.tools:
        options["tools"] = [t.to_dict() for t in request.tools]
        if request.tool_choice is not None:
            options["tool_choice"] = tool_choice_to_wire(request.tool_choice)
        if request.parallel_tool_calls is not None:
            options["parallel_tool_calls"] = request.parallel_tool_calls
        if request.tool_call_threshold is not None:
            # modelport's own field: a modelport server upstream applies it, others ignore it.
            options["tool_call_threshold"] = request.tool_call_threshold
    return options


def chat_body(
    request: ChatRequest, *, model: str, stream: bool, stream_usage: bool, max_tokens_field: str = "max_tokens"
) -> dict[str, Any]:
    """The ``/chat/completions`` body for ``request``; ``request.extra`` is merged last."""
    body: dict[str, Any] = {"model": model, "messages": [message_to_dict(m) for m in request.messages]}
    body.update(request_options(request, max_tokens_field=max_tokens_field))
    # OpenAI's own fields (DashScope's parameters have neither).
    if request.reasoning_effort is not None:
        body["reasoning_effort"] = request.reasoning_effort
    if request.cache_key is not None:
        body["prompt_cache_key"] = request.cache_key
    if stream:
        body["stream"] = True
        if stream_usage:
            body["stream_options"] = {"include_usage": True}
    body.update(request.extra)
    return body


def usage_from_wire(data: Any) -> Usage | None:
    """Reads an OpenAI ``usage`` object."""
    if not isinstance(data, Mapping):
        return None
    completion = data.get("completion_tokens_details") or {}
    prompt = data.get("prompt_tokens_details") or {}
    return Usage(
        int(data.get("prompt_tokens") or 0),
        int(data.get("completion_tokens") or 0),
        int(completion.get("reasoning_tokens") or 0) if isinstance(completion, Mapping) else 0,
        int(prompt.get("cached_tokens") or 0) if isinstance(prompt, Mapping) else 0,
    )


def _logprobs(data: Any) -> tuple[TokenLogprob, ...]:
    content = data.get("content") if isinstance(data, Mapping) else None
    if not isinstance(content, list):
        return ()
    out = []
    for item in content:
        if not isinstance(item, Mapping):
            continue
        top = tuple(
            (str(alt.get("token", "")), float(alt.get("logprob", 0.0)))
            for alt in item.get("top_logprobs") or ()
            if isinstance(alt, Mapping)
        )
        out.append(TokenLogprob(str(item.get("token", "")), float(item.get("logprob", 0.0)), top))
    return tuple(out)


def map_openai_error(failure: HttpStatusError) -> ModelPortError:
    """Maps an OpenAI-style error response (``{"error": {...}}``) to a core error."""
    error = failure.body.get("error") if isinstance(failure.body, Mapping) else None
    if isinstance(error, str):  # some servers send {"error": "text"}
        error = {"message": error}
    if not isinstance(error, Mapping):
        error = failure.body if isinstance(failure.body, Mapping) and "message" in failure.body else {}
    message = str(error.get("message") or failure.text[:300] or f"HTTP {failure.status_code}")
    code = error.get("code")
    param = error.get("param")
    status = failure.status_code
    if status in (401, 403):
        return AuthenticationError(message)
    if status == 429:
        return RateLimitedError(message)
    if status == 404 and code == "model_not_found":
        return ModelNotFoundError(str(param or "?"), ())
    if status == 408:
        return TimeoutError(message)
    if status in (400, 409, 413, 422):
        return BadRequestError(message, param=str(param) if param else None, code=str(code) if code else None)
    return UpstreamUnavailableError(f"upstream answered HTTP {status}: {message}", status_code=502)


def response_events(data: Any) -> Iterator[StreamEvent]:
    """Turns a whole (non-streamed) chat completion into events."""
    if not isinstance(data, Mapping) or not isinstance(data.get("choices"), list):
        raise UpstreamUnavailableError("the chat completion has no choices list")
    usage = usage_from_wire(data.get("usage"))
    choices = [c for c in data["choices"] if isinstance(c, Mapping)]
    for position, choice in enumerate(choices):
        index = int(choice.get("index", position))
        message = choice.get("message") or {}
        reasoning = message.get("reasoning_content") or message.get("reasoning")
        if isinstance(reasoning, str) and reasoning:
            yield ReasoningDelta(reasoning, choice=index)
        content = message.get("content")
        if isinstance(content, str) and content:
            yield TextDelta(content, _logprobs(choice.get("logprobs")), choice=index)
        yield from ToolDeltaNormalizer(index).feed(message.get("tool_calls"))
        last = position == len(choices) - 1
        yield Finish(finish_reason(choice.get("finish_reason")), usage if last else None, choice=index)


class ChunkDecoder:
    """Folds a ``/chat/completions`` SSE stream into core events.

    Finish events wait for the end of the stream, because the usage arrives in a
    chunk of its own after every choice has finished.

    Args:
        scrub: Removes secrets from text quoted in errors.
    """

    def __init__(self, scrub: Callable[[str], str] = str) -> None:
        self._sse = SSEDecoder()
        self._scrub = scrub
        self._tools: dict[int, ToolDeltaNormalizer] = {}
        self._reasons: dict[int, FinishReason] = {}
        self._seen: set[int] = set()
        self._usage: Usage | None = None
        self.done = False

    def feed_line(self, line: str) -> list[StreamEvent]:
        """Consumes one line of the response body."""
        event = self._sse.feed(line)
        return self._on_data(event.data) if event is not None else []

    def _on_data(self, data: str) -> list[StreamEvent]:
        if self.done:
            return []
        if data.strip() == "[DONE]":
            self.done = True
            return []
        try:
            chunk = json.loads(data)
        except ValueError:
            raise UpstreamUnavailableError(f"the stream sent malformed JSON: {self._scrub(data[:200])!r}") from None
        if not isinstance(chunk, Mapping):
            raise UpstreamUnavailableError("the stream sent a chunk that is not a JSON object")
        if "error" in chunk and not chunk.get("choices"):
            failure = HttpStatusError(int(chunk.get("status_code") or 500), {}, self._scrub(data))
            raise map_openai_error(failure)
        return list(self.feed_chunk(chunk))

    def feed_chunk(self, chunk: Mapping[str, Any]) -> Iterator[StreamEvent]:
        """Consumes one decoded chunk."""
        usage = usage_from_wire(chunk.get("usage"))
        if usage is not None:
            self._usage = usage
        for position, choice in enumerate(chunk.get("choices") or ()):
            if not isinstance(choice, Mapping):
                continue
            index = int(choice.get("index", position))
            self._seen.add(index)
            delta = choice.get("delta") or choice.get("message") or {}
            if isinstance(delta, Mapping):
                reasoning = delta.get("reasoning_content") or delta.get("reasoning")
                if isinstance(reasoning, str) and reasoning:
                    yield ReasoningDelta(reasoning, choice=index)
                content = delta.get("content")
                logprobs = _logprobs(choice.get("logprobs"))
                if isinstance(content, str) and (content or logprobs):
                    yield TextDelta(content, logprobs, choice=index)
                if delta.get("tool_calls"):
                    tools = self._tools.setdefault(index, ToolDeltaNormalizer(index))
                    yield from tools.feed(delta["tool_calls"])
            reason = choice.get("finish_reason")
            if reason:
                self._reasons[index] = finish_reason(reason)

    def finish(self) -> Iterator[StreamEvent]:
        """Ends the stream: one Finish per choice, the usage on the last.

        Raises:
            UpstreamUnavailableError: If the stream stopped before every choice finished.
        """
        tail = self._sse.flush()
        if tail is not None:
            yield from self._on_data(tail.data)
        unfinished = sorted(self._seen - set(self._reasons))
        if not self.done and (unfinished or not self._seen):
            raise UpstreamUnavailableError("the stream ended before the answer was complete")
        indexes = sorted(self._seen | set(self._reasons)) or [0]
        for i in indexes:
            last = i == indexes[-1]
            yield Finish(self._reasons.get(i, "stop"), self._usage if last else None, choice=i)


def _decode_vector(value: Any) -> list[float]:
    if isinstance(value, str):  # encoding_format=base64: little-endian float32
        raw = base64.b64decode(value)
        return list(struct.unpack(f"<{len(raw) // 4}f", raw))
    if isinstance(value, list):
        if value and isinstance(value[0], list):
            # llama.cpp's server does this for models without a pooling layer.
            raise UpstreamUnavailableError(
                "the server returned one vector per token instead of one per input; "
                "serve an embedding model, or enable pooling on the server"
            )
        return [float(x) for x in value]
    raise UpstreamUnavailableError("an embedding is neither a list nor base64 text")


def decode_embeddings(data: Any, expected: int) -> tuple[list[list[float]], int]:
    """Reads an ``/embeddings`` answer: vectors in input order and the prompt tokens.

    Raises:
        UpstreamUnavailableError: If the answer is malformed or the count is wrong.
    """
    items = data.get("data") if isinstance(data, Mapping) else None
    if not isinstance(items, list):
        raise UpstreamUnavailableError("the embeddings answer has no data list")
    ordered: dict[int, list[float]] = {}
    for position, item in enumerate(items):
        if isinstance(item, Mapping):
            ordered[int(item.get("index", position))] = _decode_vector(item.get("embedding"))
    if sorted(ordered) != list(range(expected)):
        raise UpstreamUnavailableError(f"asked for {expected} embeddings, got {len(ordered)}")
    usage = data.get("usage") or {}
    tokens = int(usage.get("prompt_tokens") or usage.get("total_tokens") or 0) if isinstance(usage, Mapping) else 0
    return [ordered[i] for i in range(expected)], tokens
