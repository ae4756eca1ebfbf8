"""Mistral format: ``[TOOL_CALLS]`` followed by a JSON list of calls."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from modelport.core.tools import ToolCall, ToolSpec
from modelport.workers.local.constrained.constraints import JsonConstraint
from modelport.workers.local.constrained.grammar import literal
from modelport.workers.local.tool_parsers.base import MAX_PARALLEL_CALLS, register_tool_parser
from modelport.workers.local.tool_parsers.markup import MarkupToolParser

__all__ = ["MistralToolParser"]


@register_tool_parser("mistral")
class MistralToolParser(MarkupToolParser):
    """Everything after ``[TOOL_CALLS]`` is a JSON list (or one object) of calls."""

    start = "[TOOL_CALLS]"
    end = None
    call_prefix = "[TOOL_CALLS]["
    call_suffix = "]"
    text_after_calls = False

    def render_calls(self, calls: Sequence[ToolCall]) -> str:
        """One marker and one list for all the calls of a turn."""
        bodies = [self.render_call(c)[len(self.call_prefix) : -len(self.call_suffix)] for c in calls]
        return f"{self.call_prefix}{', '.join(bodies)}{self.call_suffix}"

    def call_constraint(self, tools: Sequence[ToolSpec], *, parallel: bool) -> JsonConstraint:
        """Calls are items of one list, which must close for the output to parse."""
        more = f" ( {literal(', ')} {{value}} ){{0,{MAX_PARALLEL_CALLS - 1}}}" if parallel else ""
        schema = self.call_schema(tools)
        return JsonConstraint(
            schema,
            root=f"{literal(self.call_prefix)} {{value}}{more} {literal(self.call_suffix)}",
            closes_in_budget=True,
            # What follows the marker is one JSON list of calls: the closer closes the list.
            closing_after=self.start,
            closing_schema={"type": "array", "items": schema, "minItems": 1},
        )

    def decode_block(self, body: str) -> list[Any] | None:
        """Accepts a list, a single object, or objects one per line."""
        decoded = super().decode_block(body)
        if decoded is not None:
            return decoded
        items: Sequence[str] = [line for line in body.splitlines() if line.strip()]
        try:
            return [json.loads(line) for line in items] or None
        except ValueError:
            return None
