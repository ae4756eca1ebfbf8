"""Folds a stream of events into a complete result.

Every non-streaming path in modelport goes through this one accumulator, so a
streamed answer and a non-streamed one cannot drift apart.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Iterable
from dataclasses import dataclass, field

from modelport.core.errors import UpstreamUnavailableError
from modelport.core.events import (
    Finish,
    FinishReason,
    ReasoningDelta,
    StreamEvent,
    TextDelta,
    TokenLogprob,
    ToolCallDelta,
    Usage,
)
from modelport.core.messages import AssistantMessage
from modelport.core.tools import ToolCall, new_tool_call_id

__all__ = ["Accumulator", "ChatResult", "Choice"]


@dataclass(frozen=True, slots=True)
class Choice:
    """One finished choice."""

    index: int
    message: AssistantMessage
    finish_reason: FinishReason
    logprobs: tuple[TokenLogprob, ...] = ()


@dataclass(frozen=True, slots=True)
class ChatResult:
    """A complete chat answer."""

    choices: tuple[Choice, ...]
    usage: Usage = field(default_factory=Usage)

    @property
    def message(self) -> AssistantMessage:
        """The first choice's message."""
        return self.choices[0].message

    @property
    def text(self) -> str:
        """The first choice's text ("" when it only called tools)."""
        content = self.message.content
        return content if isinstance(content, str) else ""

    @property
    def tool_calls(self) -> tuple[ToolCall, ...]:
        """The first choice's tool calls."""
        return self.message.tool_calls

    @property
    def finish_reason(self) -> FinishReason:
        """The first choice's finish reason."""
        return self.choices[0].finish_reason


@dataclass(slots=True)
class _CallParts:
    id: str | None = None
    name: str = ""
    arguments: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _ChoiceParts:
    text: list[str] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)
    calls: dict[int, _CallParts] = field(default_factory=dict)
    logprobs: list[TokenLogprob] = field(default_factory=list)
    finish: FinishReason | None = None


class Accumulator:
    """Collects stream events; ``result()`` gives the complete answer.

    Tool-call fragments are joined by their ``index``, as OpenAI clients do.
    """

    def __init__(self) -> None:
        self._choices: dict[int, _ChoiceParts] = {}
        self._usage = Usage()

    def add(self, event: StreamEvent) -> None:
        """Folds one event in."""
        parts = self._choices.setdefault(event.choice, _ChoiceParts())
        if isinstance(event, TextDelta):
            parts.text.append(event.text)
            parts.logprobs.extend(event.logprobs)
        elif isinstance(event, ReasoningDelta):
            parts.reasoning.append(event.text)
        elif isinstance(event, ToolCallDelta):
            call = parts.calls.setdefault(event.index, _CallParts())
            if event.id and call.id is None:
                call.id = event.id
            if event.name:
                call.name += event.name
            if event.arguments:
                call.arguments.append(event.arguments)
        elif isinstance(event, Finish):
            parts.finish = event.reason
            if event.usage is not None:
                self._usage = self._usage + event.usage

    @property
    def finished(self) -> bool:
        """True once every choice seen so far has finished."""
        return bool(self._choices) and all(p.finish is not None for p in self._choices.values())

    def result(self) -> ChatResult:
        """Returns the complete answer.

        Raises:
            UpstreamUnavailableError: If the stream ended before every choice finished,
                so a cut-off answer is never mistaken for a whole one.
        """
        if not self.finished:
            raise UpstreamUnavailableError("the stream ended before the answer was finished")
        choices = []
        for index in sorted(self._choices):
            parts = self._choices[index]
            calls = tuple(
                ToolCall(c.id or new_tool_call_id(), c.name, "".join(c.arguments) or "{}")
                for _, c in sorted(parts.calls.items())
            )
            text = "".join(parts.text)
            message = AssistantMessage(
                content=text if text or not calls else None,
                tool_calls=calls,
                reasoning="".join(parts.reasoning) or None,
            )
            assert parts.finish is not None
            choices.append(Choice(index, message, parts.finish, tuple(parts.logprobs)))
        return ChatResult(tuple(choices), self._usage)

    @classmethod
    def collect(cls, events: Iterable[StreamEvent]) -> ChatResult:
        """Consumes ``events`` and returns the result."""
        acc = cls()
        for event in events:
            acc.add(event)
        return acc.result()

    @classmethod
    async def acollect(cls, events: AsyncIterable[StreamEvent]) -> ChatResult:
        """Consumes an async stream and returns the result."""
        acc = cls()
        async for event in events:
            acc.add(event)
        return acc.result()
