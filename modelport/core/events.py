"""The one stream-event type that flows from workers to every surface.

A stream is a sequence of ``StreamEvent`` values. Text, reasoning and tool-call
deltas may interleave; each choice ends with exactly one ``Finish``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypeAlias

__all__ = [
    "Finish",
    "FinishReason",
    "ReasoningDelta",
    "StreamEvent",
    "TextDelta",
    "TokenLogprob",
    "ToolCallDelta",
    "Usage",
]

FinishReason: TypeAlias = Literal["stop", "length", "tool_calls", "content_filter", "error"]


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts of one request."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    cached_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        """Prompt plus completion tokens."""
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.reasoning_tokens + other.reasoning_tokens,
            self.cached_tokens + other.cached_tokens,
        )


@dataclass(frozen=True, slots=True)
class TokenLogprob:
    """The log probability of one sampled token, with the top alternatives."""

    token: str
    logprob: float
    top: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True, slots=True)
class TextDelta:
    """A fragment of the answer's text."""

    text: str
    logprobs: tuple[TokenLogprob, ...] = ()
    choice: int = 0


@dataclass(frozen=True, slots=True)
class ReasoningDelta:
    """A fragment of the model's reasoning ("thinking") text."""

    text: str
    choice: int = 0


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """A fragment of a tool call, shaped like OpenAI's ``ChoiceDeltaToolCall``.

    The first delta of each call carries ``index``, ``id`` and ``name``; later
    ones carry the same ``index`` and argument fragments only.
    """

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""
    choice: int = 0


@dataclass(frozen=True, slots=True)
class Finish:
    """The end of one choice, with why it ended and (on the last choice) the usage.

    ``stop_sequence`` is the stop string that ended it, where the worker knows (local ones do).
    """

    reason: FinishReason
    usage: Usage | None = None
    choice: int = 0
    stop_sequence: str | None = None


StreamEvent: TypeAlias = TextDelta | ReasoningDelta | ToolCallDelta | Finish
