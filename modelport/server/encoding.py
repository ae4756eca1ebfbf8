"""Core events and results in OpenAI's wire shapes: chat chunks, chat completions, text completion chunks."""

from __future__ import annotations

from collections.abc import Sequence

from modelport.core.accumulator import ChatResult
from modelport.core.events import Finish, FinishReason, ReasoningDelta, StreamEvent, TextDelta, ToolCallDelta
from modelport.core.events import TokenLogprob as CoreLogprob
from modelport.core.events import Usage as CoreUsage
from modelport.core.messages import content_text
from modelport.server import protocol as wire

__all__ = [
    "DONE",
    "ChatChunkEncoder",
    "CompletionChunkEncoder",
    "chat_completion",
    "logprobs",
    "text_logprobs",
    "usage",
    "wire_finish_reason",
]

DONE = b"data: [DONE]\n\n"


def wire_finish_reason(reason: FinishReason) -> str:
    """The spec has no ``error`` finish reason; errors travel as error events instead."""
    return "stop" if reason == "error" else reason


def usage(value: CoreUsage | None) -> wire.Usage:
    """The wire usage object (zeros when the worker reported none)."""
    value = value or CoreUsage()
    out = wire.Usage(
        prompt_tokens=value.prompt_tokens,
        completion_tokens=value.completion_tokens,
        total_tokens=value.total_tokens,
    )
    if value.reasoning_tokens:
        out.completion_tokens_details = {"reasoning_tokens": value.reasoning_tokens}
    if value.cached_tokens:
        out.prompt_tokens_details = {"cached_tokens": value.cached_tokens}
    return out


def logprobs(items: Sequence[CoreLogprob]) -> wire.Logprobs:
    """The wire logprobs object of one choice or delta."""
    return wire.Logprobs(
        content=[
            wire.TokenLogprob(
                token=item.token,
                logprob=item.logprob,
                bytes=list(item.token.encode()),
                top_logprobs=[wire.TopLogprob(token=t, logprob=lp, bytes=list(t.encode())) for t, lp in item.top],
            )
            for item in items
        ],
        refusal=None,
    )


def text_logprobs(items: Sequence[CoreLogprob], offset: int) -> wire.CompletionLogprobs:
    """The legacy completion's logprobs object; ``offset`` is where the first token's text starts."""
    offsets = []
    for item in items:
        offsets.append(offset)
        offset += len(item.token)
    return wire.CompletionLogprobs(
        tokens=[i.token for i in items],
        token_logprobs=[i.logprob for i in items],
        top_logprobs=[dict(i.top) for i in items],
        text_offset=offsets,
    )


def chat_completion(
    result: ChatResult, *, id: str, model: str, created: int, with_logprobs: bool
) -> wire.ChatCompletion:
    """A whole chat completion from an accumulated result."""
    choices = []
    for choice in result.choices:
        message = choice.message
        text = content_text(message.content) if message.content is not None else None
        out = wire.ChatMessage(content=text if text or not message.tool_calls else None, refusal=None)
        if message.tool_calls:
            out.tool_calls = [
                wire.ToolCall(id=c.id, function=wire.FunctionCall(name=c.name, arguments=c.arguments))
                for c in message.tool_calls
            ]
        if message.reasoning:
            out.reasoning_content = message.reasoning
        choices.append(
            wire.ChatChoice(
                index=choice.index,
                message=out,
                finish_reason=wire_finish_reason(choice.finish_reason),
                logprobs=logprobs(choice.logprobs) if with_logprobs else None,
            )
        )
    return wire.ChatCompletion(id=id, created=created, model=model, choices=choices, usage=usage(result.usage))


class ChatChunkEncoder:
    """Encodes one chat stream as SSE ``data:`` lines.

    Args:
        id: The completion id shared by every chunk.
        model: The model name echoed in every chunk.
        created: Unix time of the request.
        n: How many choices the stream carries.
        include_usage: Send the final usage-only chunk (``stream_options.include_usage``).
    """

    def __init__(self, *, id: str, model: str, created: int, n: int, include_usage: bool) -> None:
        self.id, self.model, self.created = id, model, created
        self.n = n
        self.include_usage = include_usage
        self._usage: CoreUsage | None = None

    def _chunk(self, choices: list[wire.ChunkChoice]) -> bytes:
        chunk = wire.ChatCompletionChunk(id=self.id, created=self.created, model=self.model, choices=choices)
        return b"data: " + chunk.json_bytes() + b"\n\n"

    def start(self) -> bytes:
        """The first chunk of each choice: the role, and empty content."""
        return b"".join(
            self._chunk([wire.ChunkChoice(index=i, delta=wire.Delta(role="assistant", content=""), finish_reason=None)])
            for i in range(self.n)
        )

    def encode(self, event: StreamEvent) -> bytes:
        """One event as one chunk."""
        if isinstance(event, TextDelta):
            choice = wire.ChunkChoice(index=event.choice, delta=wire.Delta(content=event.text), finish_reason=None)
            if event.logprobs:
                choice.logprobs = logprobs(event.logprobs)
        elif isinstance(event, ReasoningDelta):
            choice = wire.ChunkChoice(
                index=event.choice, delta=wire.Delta(reasoning_content=event.text), finish_reason=None
            )
        elif isinstance(event, ToolCallDelta):
            if event.name is not None:
                call = wire.ToolCallChunk(
                    index=event.index,
                    id=event.id,
                    type="function",
                    function=wire.FunctionCallDelta(name=event.name, arguments=event.arguments),
                )
            else:
                call = wire.ToolCallChunk(index=event.index, function=wire.FunctionCallDelta(arguments=event.arguments))
            choice = wire.ChunkChoice(index=event.choice, delta=wire.Delta(tool_calls=[call]), finish_reason=None)
        else:
            assert isinstance(event, Finish)
            if event.usage is not None:
                self._usage = event.usage if self._usage is None else self._usage + event.usage
            choice = wire.ChunkChoice(
                index=event.choice, delta=wire.Delta(), finish_reason=wire_finish_reason(event.reason)
            )
        return self._chunk([choice])

    def end(self) -> bytes:
        """The usage chunk (when asked for) and ``[DONE]``."""
        if not self.include_usage:
            return DONE
        chunk = wire.ChatCompletionChunk(
            id=self.id, created=self.created, model=self.model, choices=[], usage=usage(self._usage)
        )
        return b"data: " + chunk.json_bytes() + b"\n\n" + DONE


class CompletionChunkEncoder:
    """Encodes one legacy text-completion stream as SSE ``data:`` lines.

    Takes ``ChatChunkEncoder``'s arguments, and ``with_logprobs``: attach each delta's log
    probabilities in the legacy shape (``tokens``, ``token_logprobs``, ``text_offset``).
    """

    def __init__(self, *, id: str, model: str, created: int, n: int, include_usage: bool, with_logprobs: bool) -> None:
        self.id, self.model, self.created = id, model, created
        self.include_usage = include_usage
        self.with_logprobs = with_logprobs
        self._offsets = [0] * n  # where each choice's next text starts, for text_offset
        self._usage: CoreUsage | None = None

    def _chunk(self, choices: list[wire.CompletionChoice], with_usage: wire.Usage | None = None) -> bytes:
        out = wire.CompletionResponse(id=self.id, created=self.created, model=self.model, choices=choices)
        if with_usage is not None:
            out.usage = with_usage
        return b"data: " + out.json_bytes() + b"\n\n"

    def encode(self, event: StreamEvent) -> bytes:
        """One event as one chunk (text and finishes; a text completion carries nothing else)."""
        if isinstance(event, TextDelta):
            offset = self._offsets[event.choice]
            self._offsets[event.choice] += len(event.text)
            found = text_logprobs(event.logprobs, offset) if self.with_logprobs else None
            return self._chunk(
                [wire.CompletionChoice(text=event.text, index=event.choice, logprobs=found, finish_reason=None)]
            )
        if isinstance(event, Finish):
            if event.usage is not None:
                self._usage = event.usage
            reason = wire_finish_reason(event.reason)
            return self._chunk(
                [wire.CompletionChoice(text="", index=event.choice, logprobs=None, finish_reason=reason)]
            )
        return b""

    def end(self) -> bytes:
        """The usage chunk (when asked for) and ``[DONE]``."""
        return (self._chunk([], usage(self._usage)) if self.include_usage else b"") + DONE
