"""The ``fake`` kind: scripted workers for tests, yours and ours."""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, cast

from modelport.core.capabilities import SAMPLING_FIELDS, Capabilities
from modelport.core.errors import (
    BadRequestError,
    ModelPortError,
    RateLimitedError,
    TimeoutError,
    UpstreamUnavailableError,
)
from modelport.core.events import Finish, FinishReason, StreamEvent, TextDelta, ToolCallDelta, Usage
from modelport.core.messages import content_text
from modelport.core.request import ChatRequest, EmbeddingRequest, EmbeddingResult
from modelport.core.tools import new_tool_call_id
from modelport.workers.base import ChatWorker, EmbeddingWorker

__all__ = [
    "FakeChatWorker",
    "FakeEmbeddingWorker",
    "reply_events",
    "text_events",
    "tool_call_events",
]

Script = Callable[[ChatRequest], Iterable[StreamEvent]]


def text_events(text: str, *, chunk: int = 4, reason: str = "stop") -> list[StreamEvent]:
    """Splits ``text`` into deltas of ``chunk`` characters, then a finish with usage."""
    events: list[StreamEvent] = [TextDelta(text[i : i + chunk]) for i in range(0, len(text), chunk)]
    events.append(Finish(reason, Usage(1, max(1, len(events)))))  # type: ignore[arg-type]
    return events


def tool_call_events(
    name: str, arguments: str = "{}", *, call_id: str | None = None, chunk: int = 8
) -> list[StreamEvent]:
    """A streamed tool call: id and name first, then argument fragments."""
    events: list[StreamEvent] = [ToolCallDelta(0, call_id or new_tool_call_id(), name)]
    events += [ToolCallDelta(0, arguments=arguments[i : i + chunk]) for i in range(0, len(arguments), chunk)]
    events.append(Finish("tool_calls", Usage(1, 1)))
    return events


def _echo(request: ChatRequest) -> list[StreamEvent]:
    last = content_text(request.messages[-1].content)
    return text_events(last)


_REPLY_KEYS = ("text", "tool_calls", "finish", "error")


def _error(status: int, message: str) -> ModelPortError:
    if status == 429:
        return RateLimitedError(message, retry_after=1.0)
    if status == 504:
        return TimeoutError(message)
    if status >= 500:
        return UpstreamUnavailableError(message, status_code=status)
    if status >= 400:
        return BadRequestError(message)
    raise BadRequestError("an error's status must be 4xx or 5xx", param="status")


def reply_events(reply: str | Mapping[str, Any], *, where: str = "reply") -> Callable[[], Iterator[StreamEvent]]:
    """A scripted reply written as data (YAML), checked now and played back later.

    A reply is a text, or a mapping of ``text``, ``tool_calls`` (``name`` and ``arguments``),
    ``finish`` (a finish reason) and ``error`` (``status`` and ``message``). An error after text
    or tool calls cuts the stream part-way, as a lost connection would.

    Raises:
        BadRequestError: Naming the offending key under ``where``.
    """
    spec: Mapping[str, Any] = {"text": reply} if isinstance(reply, str) else reply
    if not isinstance(spec, Mapping):
        raise BadRequestError("must be a text or a mapping", param=where)
    for key in spec:
        if key not in _REPLY_KEYS:
            raise BadRequestError(f"unknown key {key!r} (known: {', '.join(_REPLY_KEYS)})", param=f"{where}.{key}")
    events: list[StreamEvent] = []
    if spec.get("text"):
        events += text_events(str(spec["text"]))[:-1]
    for i, call in enumerate(spec.get("tool_calls") or ()):
        if not isinstance(call, Mapping) or not isinstance(call.get("name"), str):
            raise BadRequestError("needs a 'name'", param=f"{where}.tool_calls[{i}]")
        arguments = call.get("arguments", {})
        text = arguments if isinstance(arguments, str) else json.dumps(arguments)
        events += [ToolCallDelta(i, new_tool_call_id(), call["name"]), ToolCallDelta(i, arguments=text)]
    failure = None
    if "error" in spec:
        error = spec["error"]
        if not isinstance(error, Mapping) or not isinstance(error.get("status"), int):
            raise BadRequestError("needs a 'status' (and a 'message')", param=f"{where}.error")
        failure = _error(error["status"], str(error.get("message", "scripted failure")))
    reason = spec.get("finish") or ("tool_calls" if spec.get("tool_calls") else "stop")
    if reason not in ("stop", "length", "tool_calls", "content_filter"):
        raise BadRequestError(f"unknown finish reason {reason!r}", param=f"{where}.finish")
    finish = cast(FinishReason, reason)

    def play() -> Iterator[StreamEvent]:
        yield from events
        if failure is not None:
            raise failure
        yield Finish(finish, Usage(1, max(1, len(events))))

    return play


def _capabilities(fields: Mapping[str, Any]) -> Capabilities:
    known = Capabilities.__dataclass_fields__
    for key in fields:
        if key not in known:
            raise BadRequestError(
                f"unknown capability {key!r} (known: {', '.join(known)})", param=f"capabilities.{key}"
            )
    values = dict(fields)
    if "sampling" in values:
        values["sampling"] = frozenset(values["sampling"])
    return Capabilities(**values)


class FakeChatWorker(ChatWorker):
    """A chat worker that plays back scripted answers.

    Args:
        responses: Answers given in turn (cycling); each is a string, a list of events, or a reply
            written as data (see ``reply_events``), as a config file gives a scripted agent's turns.
        script: A function from request to events; overrides ``responses``.
        replies: Replies by the last message's text, written as data (see ``reply_events``):
            a config file's way to script errors and tool calls.
        delay: Seconds to wait before each event (sleeps in sync, awaits in async).
        capabilities: What to declare (a ``Capabilities`` or, from a config file, a mapping of
            its fields); everything on by default.

    With neither ``responses`` nor ``script`` it echoes the last message.
    ``responses``, ``replies`` and ``delay`` change in place through ``reconfigure``.
    """

    reconfigurable = frozenset({"responses", "replies", "delay"})

    def __init__(
        self,
        responses: Sequence[str | Sequence[StreamEvent] | Mapping[str, Any]] = (),
        *,
        script: Script | None = None,
        replies: Mapping[str, str | Mapping[str, Any]] | None = None,
        delay: float = 0.0,
        capabilities: Capabilities | Mapping[str, Any] | None = None,
    ) -> None:
        self._script = script
        self._turn = 0
        self.requests: list[ChatRequest] = []
        self.reconfigure(responses=responses, replies=replies or {}, delay=delay)
        if isinstance(capabilities, Mapping):
            capabilities = _capabilities(capabilities)
        self.capabilities = capabilities or Capabilities(
            tools=True,
            tool_call_streaming=True,
            tool_choice=True,
            structured_output=True,
            max_context=8192,
            sampling=SAMPLING_FIELDS,
        )

    def reconfigure(self, **params: Any) -> None:
        """Changes the scripted answers or the delay in place."""
        super().reconfigure(**params)
        if "responses" in params:
            self._responses = [
                reply_events(answer, where=f"responses[{i}]") if isinstance(answer, Mapping) else answer
                for i, answer in enumerate(params["responses"])
            ]
        if "replies" in params:
            self._replies = {k: reply_events(v, where=f"replies.{k}") for k, v in params["replies"].items()}
        if "delay" in params:
            self.delay = float(params["delay"])

    def _play(self, request: ChatRequest) -> Iterable[StreamEvent]:
        self.check_request(request)
        self.requests.append(request)
        reply = self._replies.get(content_text(request.messages[-1].content))
        if reply is not None:
            return reply()
        if self._script is not None:
            # Lazily, so that a script can fail part-way through, as a real stream can.
            return self._script(request)
        if not self._responses:
            return _echo(request)
        answer = self._responses[self._turn % len(self._responses)]
        self._turn += 1
        if callable(answer):
            return answer()
        return text_events(answer) if isinstance(answer, str) else list(answer)

    def stream(self, request: ChatRequest) -> Iterator[StreamEvent]:
        """Plays the next scripted answer."""
        for event in self._play(request):
            if self.delay:
                time.sleep(self.delay)
            yield event

    async def astream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        """Plays the next scripted answer without blocking the loop."""
        for event in self._play(request):
            if self.delay:
                await asyncio.sleep(self.delay)
            yield event


class FakeEmbeddingWorker(EmbeddingWorker):
    """Deterministic embeddings from a hash of each text, for tests.

    Args:
        dimensions: Vector size.
    """

    def __init__(self, dimensions: int = 16) -> None:
        self.dimensions = dimensions
        self.capabilities = Capabilities(chat=False, embeddings=True, rerank=True, embedding_dimensions=dimensions)

    def embed(self, request: EmbeddingRequest) -> EmbeddingResult:
        """Hashes each text into a vector."""
        size = request.dimensions or self.dimensions
        vectors = []
        for text in request.texts:
            digest = hashlib.sha256(text.encode()).digest()
            vec = [(digest[i % len(digest)] - 127.5) / 127.5 for i in range(size)]
            if request.normalize:
                norm = math.sqrt(sum(v * v for v in vec)) or 1.0
                vec = [v / norm for v in vec]
            vectors.append(vec)
        return EmbeddingResult(vectors, sum(len(t.split()) for t in request.texts))

    async def aembed(self, request: EmbeddingRequest) -> EmbeddingResult:
        """Same as ``embed``: it is instant."""
        return self.embed(request)
