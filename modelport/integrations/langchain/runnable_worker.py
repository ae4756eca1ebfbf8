"""The ``runnable`` kind: any LangChain runnable (a chain, an agent, a graph) as a chat worker.

It is registered through the ``modelport.workers`` entry point, the same way a third-party
kind would be, so the worker layer itself never imports LangChain.
"""

from __future__ import annotations

import importlib
import json
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import LLMResult
from langchain_core.runnables import Runnable

from modelport.core import (
    BadRequestError,
    Capabilities,
    ChatRequest,
    Finish,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
    Usage,
    content_text,
)
from modelport.integrations.langchain.messages import events_from_chunk, from_core_messages
from modelport.workers import ChatWorker

__all__ = ["RunnableWorker", "load_factory"]


def load_factory(path: str) -> Callable[..., Any]:
    """Imports ``"package.module:function"``.

    Raises:
        BadRequestError: If the path is malformed or does not import.
    """
    module, _, attr = path.partition(":")
    if not module or not attr:
        raise BadRequestError(f"factory must look like 'module:function', got {path!r}", param="factory")
    try:
        target = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as error:
        raise BadRequestError(f"cannot import factory {path!r}: {error}", param="factory") from error
    if not callable(target):
        raise BadRequestError(f"factory {path!r} is not callable", param="factory")
    return target  # type: ignore[no-any-return]


class RunnableWorker(ChatWorker):
    """Serves a LangChain runnable as if it were a chat model.

    Messages go in as LangChain messages (or, with ``input_key``, the last user
    message's text under that key; with ``messages_key``, the messages under that
    key, as LangGraph agents take them). An ``AIMessage``, a string or a dict comes
    out. Streaming goes through the runnable's own ``stream``/``astream``; tool calls
    in its messages pass through as tool-call deltas.

    Args:
        runnable: The runnable to serve.
        factory: Instead of ``runnable``, ``"module:function"`` that builds it.
        input_key: Pass the last user message's text under this key.
        messages_key: Pass the messages under this key.
        output_key: Read the answer from this key of a dict output.
        factory_kwargs: Keyword arguments for the factory.
    """

    def __init__(
        self,
        runnable: Runnable[Any, Any] | None = None,
        *,
        factory: str | None = None,
        input_key: str | None = None,
        messages_key: str | None = None,
        output_key: str | None = None,
        factory_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        if runnable is None:
            if factory is None:
                raise BadRequestError("a runnable worker needs a runnable or a factory", param="factory")
            runnable = load_factory(factory)(**dict(factory_kwargs or {}))
        if not isinstance(runnable, Runnable):
            raise BadRequestError(f"{type(runnable).__name__} is not a LangChain Runnable", param="factory")
        self.runnable = runnable
        self.input_key = input_key
        self.messages_key = messages_key
        self.output_key = output_key
        self.capabilities = Capabilities(tools=False)

    def _input(self, request: ChatRequest) -> Any:
        self.check_request(request)
        if self.input_key:
            return {self.input_key: content_text(request.messages[-1].content)}
        messages: list[BaseMessage] = from_core_messages(request.messages)
        return {self.messages_key: messages} if self.messages_key else messages

    def _final_events(self, output: Any) -> list[StreamEvent]:
        if isinstance(output, (AIMessage, AIMessageChunk)):
            return events_from_chunk(output)
        if isinstance(output, str):
            return [TextDelta(output)] if output else []
        if isinstance(output, Mapping):
            if self.output_key is not None:
                return self._final_events(output.get(self.output_key, ""))
            messages = output.get("messages")
            if isinstance(messages, list) and messages and isinstance(messages[-1], AIMessage):
                return events_from_chunk(messages[-1])  # a LangGraph state: its last answer
            for key in ("output", "answer", "result", "text"):
                if isinstance(output.get(key), str):
                    return [TextDelta(output[key])]
        return [TextDelta(json.dumps(output, ensure_ascii=False, default=str))]

    def _emit(self, run: _Run, chunk: Any) -> list[StreamEvent]:
        # Text and message chunks stream as they come; dict chunks (graph states) are kept
        # and only the last one is answered from, once the run ends.
        if isinstance(chunk, (str, AIMessageChunk)):
            events = self._final_events(chunk)
            run.called = run.called or any(isinstance(e, ToolCallDelta) for e in events)
            return events
        run.held = [chunk]
        return []

    def _end(self, run: _Run) -> list[StreamEvent]:
        events = self._final_events(run.held[0]) if run.held else []
        called = run.called or any(isinstance(e, ToolCallDelta) for e in events)
        return [*events, Finish("tool_calls" if called else "stop", run.usage.total())]

    def stream(self, request: ChatRequest) -> Iterator[StreamEvent]:
        """Streams the runnable's output; the usage is that of every model call inside it."""
        run = _Run()
        for chunk in self.runnable.stream(self._input(request), config={"callbacks": [run.usage]}):
            yield from self._emit(run, chunk)
        yield from self._end(run)

    async def astream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        """Streams through the runnable's native ``astream``."""
        run = _Run()
        async for chunk in self.runnable.astream(self._input(request), config={"callbacks": [run.usage]}):
            for event in self._emit(run, chunk):
                yield event
        for event in self._end(run):
            yield event


class _UsageCounter(BaseCallbackHandler):
    """Adds up the token usage that chat models inside the runnable report."""

    run_inline = True  # count in the run's own thread or task, in order

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.prompt_tokens = 0
        self.completion_tokens = 0

    def on_llm_end(self, response: LLMResult, **kwargs: Any) -> None:
        for generations in response.generations:
            for generation in generations:
                usage = getattr(getattr(generation, "message", None), "usage_metadata", None)
                if usage:
                    with self._lock:
                        self.prompt_tokens += int(usage.get("input_tokens", 0))
                        self.completion_tokens += int(usage.get("output_tokens", 0))

    def total(self) -> Usage:
        with self._lock:
            return Usage(self.prompt_tokens, self.completion_tokens)


@dataclass(slots=True)
class _Run:
    """What one run of the runnable has shown so far."""

    called: bool = False
    held: list[Any] = field(default_factory=list)
    usage: _UsageCounter = field(default_factory=_UsageCounter)
