"""Turns a local model's raw text into stream events.

Plain answers pass straight through. When tools are offered, the model's tool-call
parser finds calls in the text as it streams. Forced tool calls and JSON response
formats also carry a decoding constraint for the engine to enforce.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

from modelport.core.events import StreamEvent, TextDelta
from modelport.core.request import ChatRequest
from modelport.core.tools import NamedToolChoice
from modelport.workers.constraints import JsonConstraint
from modelport.workers.tool_parsers.base import ToolParser

__all__ = ["OutputParser", "TextOutput", "ToolCallOutput", "output_parser_for"]


class OutputParser:
    """Consumes generated text and yields events.

    Attributes:
        constraint: What the engine must enforce while decoding, or ``None``.
    """

    def __init__(self, constraint: JsonConstraint | None = None) -> None:
        self.constraint = constraint

    @property
    def tool_calls(self) -> int:
        """How many tool calls were found so far."""
        return 0

    def feed(self, text: str, choice: int) -> Iterator[StreamEvent]:
        """Consumes one piece of text."""
        yield TextDelta(text, choice=choice)

    def finish(self, choice: int) -> Iterator[StreamEvent]:
        """Flushes whatever is held back at the end of generation."""
        return iter(())


class TextOutput(OutputParser):
    """Passes text through untouched (optionally under a JSON constraint)."""


class ToolCallOutput(OutputParser):
    """Runs a tool-call parser over the text."""

    def __init__(self, parser: ToolParser, constraint: JsonConstraint | None = None) -> None:
        super().__init__(constraint)
        self.parser = parser

    @property
    def tool_calls(self) -> int:
        """How many tool calls the parser emitted."""
        return self.parser.calls_emitted

    def feed(self, text: str, choice: int) -> Iterator[StreamEvent]:
        """Feeds the parser."""
        for event in self.parser.feed(text):
            yield replace(event, choice=choice) if choice else event

    def finish(self, choice: int) -> Iterator[StreamEvent]:
        """Flushes the parser."""
        for event in self.parser.finish():
            yield replace(event, choice=choice) if choice else event


def output_parser_for(request: ChatRequest, parser: type[ToolParser]) -> OutputParser:
    """Picks the output handling, and any decoding constraint, for ``request``."""
    if request.wants_tools:
        tool_parser = parser()
        choice = request.tool_choice
        if isinstance(choice, NamedToolChoice):
            forced = [t for t in request.tools if t.name == choice.name]
        elif choice == "required":
            forced = list(request.tools)
        else:
            return ToolCallOutput(tool_parser)
        schema = tool_parser.call_schema(forced)
        return ToolCallOutput(tool_parser, JsonConstraint(schema, tool_parser.call_prefix, tool_parser.call_suffix))
    fmt = request.response_format
    if fmt is not None and fmt.type != "text":
        return TextOutput(JsonConstraint(dict(fmt.schema) if fmt.schema else {"type": "object"}))
    return TextOutput()
