"""Anthropic's Messages wire format, as a client speaks it.

Builds ``POST /v1/messages`` bodies from core requests, folds the streamed events (or a whole
message) into core events, and maps Anthropic's error bodies to the core errors. The server's
side of the same API is ``modelport.server.endpoints.messages``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from modelport.core.errors import (
    AuthenticationError,
    BadRequestError,
    ModelNotFoundError,
    ModelPortError,
    OverloadedError,
    RateLimitedError,
    TimeoutError,
    UpstreamUnavailableError,
)
from modelport.core.events import Finish, FinishReason, ReasoningDelta, StreamEvent, TextDelta, ToolCallDelta, Usage
from modelport.core.messages import (
    AssistantMessage,
    Content,
    ImagePart,
    Message,
    SystemMessage,
    ToolMessage,
    content_text,
)
from modelport.core.request import ChatRequest
from modelport.core.tools import NamedToolChoice
from modelport.workers.remote.http import HttpStatusError
from modelport.workers.remote.sse import SSEDecoder

__all__ = ["ANTHROPIC_VERSION", "MessageDecoder", "map_anthropic_error", "message_events", "messages_body"]

ANTHROPIC_VERSION = "2023-06-01"

_STOP_REASONS: Mapping[str, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}

# Thinking budgets for OpenAI-style efforts; Anthropic's floor is 1,024 tokens.
_THINKING_BUDGETS: Mapping[str, int] = {"minimal": 1024, "low": 1024, "medium": 4096, "high": 16384}
_MIN_THINKING = 1024


def _blocks(content: Content | None) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    out: list[dict[str, Any]] = []
    for part in content:
        if isinstance(part, ImagePart):
            out.append({"type": "image", "source": _image_source(part.url)})
        elif part.text:
            out.append({"type": "text", "text": part.text})
    return out


def _image_source(url: str) -> dict[str, Any]:
    if url.startswith("data:"):
        header, _, data = url.partition(",")
        media_type = header.removeprefix("data:").split(";", 1)[0] or "image/png"
        return {"type": "base64", "media_type": media_type, "data": data}
    return {"type": "url", "url": url}


def _arguments(text: str) -> Any:
    try:
        value = json.loads(text or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _turns(messages: Sequence[Message]) -> tuple[str | None, list[dict[str, Any]]]:
    """The system prompt and the turns; tool results join the user turn that follows the call."""
    system = [content_text(m.content) for m in messages if isinstance(m, SystemMessage)]
    turns: list[dict[str, Any]] = []
    for message in messages:
        if isinstance(message, SystemMessage):
            continue
        if isinstance(message, ToolMessage):
            result: dict[str, Any] = {
                "type": "tool_result",
                "tool_use_id": message.tool_call_id,
                "content": _blocks(message.content) or "",
            }
            if message.is_error:
                result["is_error"] = True
            blocks = [result]
            role = "user"
        elif isinstance(message, AssistantMessage):
            blocks = _blocks(message.content)
            blocks += [
                {"type": "tool_use", "id": call.id, "name": call.name, "input": _arguments(call.arguments)}
                for call in message.tool_calls
            ]
            role = "assistant"
        else:
            blocks = _blocks(message.content)
            role = "user"
        if turns and turns[-1]["role"] == role:  # Anthropic's turns alternate: same-role turns join
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    return ("\n\n".join(s for s in system if s) or None), turns


def _tool_choice(request: ChatRequest) -> dict[str, Any] | None:
    choice = request.tool_choice
    out: dict[str, Any] | None
    if isinstance(choice, NamedToolChoice):
        out = {"type": "tool", "name": choice.name}
    elif choice in ("auto", "none"):
        out = {"type": choice}
    elif choice == "required":
        out = {"type": "any"}
    else:
        out = None
    if request.parallel_tool_calls is False and request.tools and (out is None or out["type"] != "none"):
        out = {**(out or {"type": "auto"}), "disable_parallel_tool_use": True}
    return out


def _thinking(effort: str | None, max_tokens: int) -> dict[str, Any] | None:
    if effort is None:
        return None
    budget = _THINKING_BUDGETS.get(effort)
    if budget is None:  # "none", or an effort Anthropic has no budget for
        return {"type": "disabled"}
    budget = min(budget, max_tokens - 1)  # the budget must stay under max_tokens
    return {"type": "enabled", "budget_tokens": budget} if budget >= _MIN_THINKING else None


def messages_body(request: ChatRequest, *, model: str, max_tokens: int, stream: bool) -> dict[str, Any]:
    """The ``POST /v1/messages`` body for ``request``.

    Args:
        request: The request.
        model: The remote model's name.
        max_tokens: What to ask for when the request sets no limit (Anthropic requires one).
        stream: Whether to ask for events.
    """
    system, turns = _turns(request.messages)
    limit = request.max_tokens or max_tokens
    body: dict[str, Any] = {"model": model, "max_tokens": limit, "messages": turns}
    optional = {
        "system": system,
        "temperature": request.temperature,
        "top_p": request.top_p,
        "top_k": request.top_k,
        "stop_sequences": list(request.stop) or None,
        "tool_choice": _tool_choice(request),
        "thinking": _thinking(request.reasoning_effort, limit),
    }
    body.update({k: v for k, v in optional.items() if v is not None})
    if request.tools:
        body["tools"] = [
            {"name": t.name, "description": t.description, "input_schema": dict(t.parameters)} for t in request.tools
        ]
    if stream:
        body["stream"] = True
    return body


def _usage(data: Any, base: Usage | None = None) -> Usage:
    """Anthropic's usage: input excludes cached reads and writes, which OpenAI's prompt count holds."""
    usage = data if isinstance(data, Mapping) else {}
    start = base or Usage()

    def count(name: str, default: int) -> int:
        value = usage.get(name)
        return int(value) if isinstance(value, int) else default

    cached = count("cache_read_input_tokens", start.cached_tokens)
    written = count("cache_creation_input_tokens", 0)
    fresh = count("input_tokens", start.prompt_tokens - start.cached_tokens)
    return Usage(
        prompt_tokens=fresh + cached + written,
        completion_tokens=count("output_tokens", start.completion_tokens),
        cached_tokens=cached,
    )


class MessageDecoder:
    """Folds Anthropic's stream events into core events.

    ``message_start`` carries the input usage, each content block's start, deltas and stop become
    text, reasoning and tool-call deltas, ``message_delta`` carries the stop reason and output
    usage, and ``message_stop`` ends the answer. An ``error`` event raises the error it names.

    Args:
        scrub: Removes the API key from any text that reaches an error message.
    """

    def __init__(self, scrub: Callable[[str], str] = str) -> None:
        self._sse = SSEDecoder()
        self._scrub = scrub
        self._usage = Usage()
        self._reason: FinishReason = "stop"
        self._stop_sequence: str | None = None
        self._calls: dict[int, int] = {}  # content block index -> tool call index
        self.done = False

    def feed_line(self, line: str) -> Iterator[StreamEvent]:
        """Consumes one SSE line."""
        event = self._sse.feed(line)
        if event is not None and event.data:
            yield from self.feed_event(event.event, event.data)

    def feed_event(self, name: str, data: str) -> Iterator[StreamEvent]:
        """Consumes one event's JSON data."""
        try:
            payload = json.loads(data)
        except ValueError:
            raise UpstreamUnavailableError(f"a Messages event is not JSON: {self._scrub(data[:200])}") from None
        kind = payload.get("type", name) if isinstance(payload, Mapping) else name
        if kind == "error":
            error = payload.get("error") if isinstance(payload, Mapping) else None
            raise _typed(error if isinstance(error, Mapping) else {}, 500, self._scrub)
        if not isinstance(payload, Mapping):
            return
        if kind == "message_start":
            self._usage = _usage((payload.get("message") or {}).get("usage"))
        elif kind == "content_block_start":
            yield from self._block_start(int(payload.get("index", 0)), payload.get("content_block") or {})
        elif kind == "content_block_delta":
            yield from self._delta(int(payload.get("index", 0)), payload.get("delta") or {})
        elif kind == "message_delta":
            delta = payload.get("delta") or {}
            self._reason = _STOP_REASONS.get(str(delta.get("stop_reason")), "stop")
            self._stop_sequence = delta.get("stop_sequence") or None
            self._usage = _usage(payload.get("usage"), self._usage)
        elif kind == "message_stop":
            self.done = True
            yield Finish(self._reason, self._usage, stop_sequence=self._stop_sequence)

    def _block_start(self, index: int, block: Mapping[str, Any]) -> Iterator[StreamEvent]:
        kind = block.get("type")
        if kind == "tool_use":
            self._calls[index] = len(self._calls)
            yield ToolCallDelta(self._calls[index], id=str(block.get("id") or ""), name=str(block.get("name") or ""))
            given = block.get("input")
            if given:  # a whole input in the start block (servers that do not stream it)
                yield ToolCallDelta(self._calls[index], arguments=json.dumps(given, ensure_ascii=False))
        elif kind == "text" and block.get("text"):
            yield TextDelta(str(block["text"]))
        elif kind == "thinking" and block.get("thinking"):
            yield ReasoningDelta(str(block["thinking"]))

    def _delta(self, index: int, delta: Mapping[str, Any]) -> Iterator[StreamEvent]:
        kind = delta.get("type")
        if kind == "text_delta" and delta.get("text"):
            yield TextDelta(str(delta["text"]))
        elif kind == "thinking_delta" and delta.get("thinking"):
            yield ReasoningDelta(str(delta["thinking"]))
        elif kind == "input_json_delta" and delta.get("partial_json") and index in self._calls:
            yield ToolCallDelta(self._calls[index], arguments=str(delta["partial_json"]))
        # signature_delta and citations change nothing a core event holds.

    def finish(self) -> Iterator[StreamEvent]:
        """Raises if the stream ended without ``message_stop``: the answer was cut."""
        if not self.done:
            raise UpstreamUnavailableError("the Messages stream ended before message_stop")
        return iter(())


def message_events(data: Any) -> Iterator[StreamEvent]:
    """Turns a whole (non-streamed) message into events."""
    if not isinstance(data, Mapping) or not isinstance(data.get("content"), list):
        raise UpstreamUnavailableError("the message has no content list")
    calls = 0
    for block in data["content"]:
        if not isinstance(block, Mapping):
            continue
        kind = block.get("type")
        if kind == "text" and block.get("text"):
            yield TextDelta(str(block["text"]))
        elif kind == "thinking" and block.get("thinking"):
            yield ReasoningDelta(str(block["thinking"]))
        elif kind == "tool_use":
            arguments = json.dumps(block.get("input") or {}, ensure_ascii=False)
            yield ToolCallDelta(calls, id=str(block.get("id") or ""), name=str(block.get("name") or ""))
            yield ToolCallDelta(calls, arguments=arguments)
            calls += 1
    reason = _STOP_REASONS.get(str(data.get("stop_reason")), "stop")
    yield Finish(reason, _usage(data.get("usage")), stop_sequence=data.get("stop_sequence") or None)


def _typed(error: Mapping[str, Any], status: int, scrub: Callable[[str], str]) -> ModelPortError:
    kind = str(error.get("type") or "")
    message = scrub(str(error.get("message") or kind or f"HTTP {status}"))
    if kind == "overloaded_error" or status == 529:
        return OverloadedError(message)
    if kind == "rate_limit_error" or status == 429:
        return RateLimitedError(message)
    if kind in ("authentication_error", "permission_error") or status in (401, 403):
        return AuthenticationError(message)
    if kind == "not_found_error" or status == 404:
        # Anthropic says "model: NAME"; modelport's own server "The model 'NAME' does not exist".
        named = re.search(r"model[: ]+'?([^'\s,]+)", message)
        return ModelNotFoundError(named.group(1) if named else message, ())
    if kind == "timeout_error" or status in (408, 504):
        return TimeoutError(message)
    if kind in ("invalid_request_error", "request_too_large") or status in (400, 413, 422):
        return BadRequestError(message)
    return UpstreamUnavailableError(f"upstream answered HTTP {status}: {message}", status_code=502)


def map_anthropic_error(failure: HttpStatusError) -> ModelPortError:
    """Maps an Anthropic error response (``{"type": "error", "error": {...}}``) to a core error."""
    body = failure.body if isinstance(failure.body, Mapping) else {}
    error = body.get("error")
    if not isinstance(error, Mapping):
        error = {"message": failure.text[:300]}
    return _typed(error, failure.status_code, str)
