"""Turns a local model's raw text into stream events.

Plain answers pass straight through; when tools are offered, a tool-call parser
(see ``modelport.workers.tool_parsers``) finds calls in the text as it streams.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from modelport.core.events import StreamEvent, TextDelta
from modelport.core.request import ChatRequest

__all__ = ["OutputParser", "TextOutput", "output_parser_for"]


class OutputParser:
    """Consumes generated text and yields events.

    Attributes:
        constraint: An engine-neutral decoding constraint, or ``None``.
        tool_calls: How many tool calls were found so far.
    """

    constraint: Any = None
    tool_calls: int = 0

    def feed(self, text: str, choice: int) -> Iterator[StreamEvent]:
        """Consumes one piece of text."""
        raise NotImplementedError

    def finish(self, choice: int) -> Iterator[StreamEvent]:
        """Flushes whatever is held back at the end of generation."""
        return iter(())


class TextOutput(OutputParser):
    """Passes text through untouched."""

    def feed(self, text: str, choice: int) -> Iterator[StreamEvent]:
        """Yields ``text`` as one delta."""
        yield TextDelta(text, choice=choice)


def output_parser_for(request: ChatRequest, tool_parser: str | None) -> OutputParser:
    """Picks the output handling for ``request``."""
    return TextOutput()
